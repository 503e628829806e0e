// The controller's half of the session handoff (docs/PROTOCOL.md 3.8; the gateway's is
// host/gateway/session-handoff.ts): device sessions as terminate gateways report them (SESSION_STATE), stored in
// device_sessions (migrations/004_session_handoff.sql) with their keys wrapped by the master key, and given to
// the gateway that asks for one (SESSION_FETCH) when it may be resumed. Each answer is a SESSION_ANSWER:
//
//   grant,<out index>,<top>             to a report by the session's holder: it may seal below top under that key
//   taken                               to a report by a gateway that no longer holds the session
//   resume,<start>,<top>,<rx>,<saved>   to a fetch: the gateway holds the session now, sends from start (the
//                                       stored top) and may seal below top; its replay window starts at rx
//   close,<start>,<top>,<rx>,<saved>    to a fetch of a state too old to resume: seal one CTRL_CLOSE with it
//   none                                no such session, or its device was revoked or rotated since
//
// A gateway's reports and fetches are handled in order, a report in one transaction, the fetches waiting
// meanwhile in one transaction for all of them (a gateway that takes over another's boards asks for all of
// their sessions at once); a fetch claims the row (FOR UPDATE, then a new holder and a top moved on by
// FETCH_GAP), so two gateways fetching one session at once never get the same numbers.
import type { Db } from "./db/db";
import { bytes } from "./db/db";
import type { Keyring } from "./keyring";
import type { Logger } from "../telemetry/log";
import { grantText, readSessionState } from "../backbone/session-handoff";

/** How far a fetch moves the stored top: the resumer's first block and the one it reports ahead. */
export const FETCH_GAP = 2048;
/** A state not reported for longer than this is too old to resume (and is pruned after twice as long). */
export const SESSION_MAX_AGE_MS = 3_600_000;

export type SessionStoreStats = { reports: number; granted: number; taken: number; fetches: number; resumed: number; closed: number; none: number; failed: number; malformed: number };

const BAD = "malformed";

type Fetch = { spi: number; answer: (spi: number, text: string) => void; done: () => void };
type Row = { id: string; spi: number; born: number; top: string; rx: string; w: unknown; v: number; old: boolean; gone: boolean };

export class SessionStore {
  readonly stats: SessionStoreStats = { reports: 0, granted: 0, taken: 0, fetches: 0, resumed: 0, closed: 0, none: 0, failed: 0, malformed: 0 };
  private readonly chains = new Map<string, Promise<void>>();
  /** Per gateway, the fetches waiting for the next batch. */
  private readonly fetches = new Map<string, Fetch[]>();
  private prunedAt = 0;

  constructor(
    private readonly db: Db,
    private readonly ring: Keyring,
    /** The registry's device id for a session's peer (a dh kid or a psk device id, in hex). */
    private readonly deviceOf: (peer: string) => string,
    private readonly log: Logger,
    private readonly maxAgeMs = SESSION_MAX_AGE_MS,
  ) {}

  /**
   * A gateway's SESSION_STATE (`peer` in hex, its text) or SESSION_FETCH (`spi`): `answer` gets the text to send
   * back (nothing for a malformed report), `done` is called once it is durable (or failed: the gateway asks again).
   */
  report(gateway: string, peer: string, text: string, answer: (spi: number, text: string) => void, done: () => void): void {
    this.queue(gateway, async () => {
      const spi = Number(text.slice(0, text.indexOf(",")));
      const a = await this.stored(gateway, peer, text);
      if (a !== BAD) answer(spi, a);
    }, done);
  }

  fetch(gateway: string, spi: number, answer: (spi: number, text: string) => void, done: () => void): void {
    const waiting = this.fetches.get(gateway);
    if (waiting !== undefined) return void waiting.push({ spi, answer, done });
    const batch: Fetch[] = [{ spi, answer, done }];
    this.fetches.set(gateway, batch);
    this.queue(gateway, async () => {
      this.fetches.delete(gateway);
      const answers = await this.claimed(gateway, batch.map((f) => f.spi));
      for (const f of batch) f.answer(f.spi, answers.get(f.spi)!);
    }, () => {
      this.fetches.delete(gateway);
      for (const f of batch) f.done();
    });
  }

  /** The device's stored sessions are gone (revoked, its keys rotated). */
  async forget(device: string): Promise<void> {
    await this.db.query("DELETE FROM device_sessions WHERE device = $1", [device]);
  }

  private queue(gateway: string, work: () => Promise<void>, done: () => void): void {
    const next = (this.chains.get(gateway) ?? Promise.resolve()).then(work).catch((e) => {
      this.stats.failed++;
      this.log.warn("a session handoff failed", { gateway, error: String(e) });
    }).finally(done);
    this.chains.set(gateway, next);
    void next.then(() => {
      if (this.chains.get(gateway) === next) this.chains.delete(gateway);
    });
  }

  /** "spi,top,rx,<sessionSave's 9 fields>" stored for its holder: the grant, "taken", or BAD. */
  private async stored(gateway: string, peer: string, text: string): Promise<string> {
    this.stats.reports++;
    const r = readSessionState(text);
    if (r === undefined || r.peer !== peer) {
      this.stats.malformed++;
      return BAD;
    }
    const { spi, top, rxTop: rx, outIndex } = r;
    const device = this.deviceOf(peer);
    const id = `${device}/${spi}`;
    const plain = Buffer.from(r.saved, "utf8");
    try {
      const rows = await this.db.transaction((tx) => this.ring.wrapForWrite(tx, "session", id, plain, (w) => tx.query<{ out_index: number; top: string }>(
        `INSERT INTO device_sessions (id, device, spi, holder, out_index, seq_top, rx_top, wrapped_state, wrap_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET out_index = EXCLUDED.out_index, rx_top = EXCLUDED.rx_top,
           seq_top = CASE WHEN EXCLUDED.out_index = device_sessions.out_index THEN GREATEST(device_sessions.seq_top, EXCLUDED.seq_top) ELSE EXCLUDED.seq_top END,
           wrapped_state = EXCLUDED.wrapped_state, wrap_version = EXCLUDED.wrap_version, updated_at = now()
         WHERE device_sessions.holder = EXCLUDED.holder AND EXCLUDED.out_index >= device_sessions.out_index
         RETURNING out_index, seq_top::text AS top`,
        [id, device, spi, gateway, outIndex, top, rx, w.wrapped, w.version],
      )));
      await this.prune();
      if (rows.length === 0) {
        this.stats.taken++;
        return "taken";
      }
      this.stats.granted++;
      return grantText(rows[0].out_index, rows[0].top);
    } finally {
      plain.fill(0);
    }
  }

  /** The sessions on `spis`, claimed for `gateway` in one transaction: each one's answer text. */
  private async claimed(gateway: string, spis: number[]): Promise<Map<number, string>> {
    this.stats.fetches += spis.length;
    const answers = await this.db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        `SELECT s.id, s.spi, extract(epoch FROM s.created_at)::float8 AS born, s.seq_top::text AS top, s.rx_top::text AS rx,
           s.wrapped_state AS w, s.wrap_version AS v, s.updated_at < now() - $2 * interval '1 millisecond' AS old,
           (d.revoked_at IS NOT NULL OR (d.rotated_at IS NOT NULL AND d.rotated_at >= s.created_at)) AS gone
         FROM device_sessions s JOIN devices d ON d.id = s.device
         WHERE s.spi = ANY($1::int[]) FOR UPDATE OF s`,
        [[...new Set(spis)], this.maxAgeMs],
      );
      // The newest session on each SPI (two devices' gateways may have drawn the same one).
      const newest = new Map<number, Row>();
      for (const r of rows) if ((newest.get(r.spi)?.born ?? -1) < r.born) newest.set(r.spi, r);
      const out = new Map<number, string>(), claim: string[] = [], gone: string[] = [];
      for (const spi of spis) {
        const r = newest.get(spi);
        if (out.has(spi)) continue;
        // A revoked (or rotated) device's session is never resumed, nor closed with its keys: it is deleted.
        if (r === undefined || r.gone) {
          if (r !== undefined) gone.push(r.id);
          out.set(spi, "none");
          continue;
        }
        const plain = this.ring.unwrap("session", r.id, { wrapped: bytes(r.w), version: r.v });
        const saved = Buffer.from(plain).toString("utf8");
        plain.fill(0);
        const start = Number(r.top), top = start + FETCH_GAP;
        (r.old ? gone : claim).push(r.id);
        out.set(spi, `${r.old ? "close" : "resume"},${start},${top},${r.rx},${saved}`);
      }
      if (claim.length > 0) await tx.query("UPDATE device_sessions SET holder = $1, seq_top = seq_top + $2, updated_at = now() WHERE id = ANY($3::text[])", [gateway, FETCH_GAP, claim]);
      if (gone.length > 0) await tx.query("DELETE FROM device_sessions WHERE id = ANY($1::text[])", [gone]);
      return out;
    });
    for (const a of answers.values()) {
      if (a.startsWith("resume")) this.stats.resumed++;
      else if (a.startsWith("close")) this.stats.closed++;
      else this.stats.none++;
    }
    return answers;
  }

  /** At most once a minute: states older than twice the age limit go (nothing would resume them). */
  private async prune(): Promise<void> {
    const now = Date.now();
    if (now - this.prunedAt < 60_000) return;
    this.prunedAt = now;
    await this.db.query("DELETE FROM device_sessions WHERE updated_at < now() - $1 * interval '1 millisecond'", [2 * this.maxAgeMs]);
  }
}
