// Sessions as the parties that hold them report them: a gateway (terminate mode) or the controller's own
// responders (relay mode) call recordOpen when a device session is established and recordClose when it
// ends. Revoking a device closes its open rows here; ending the live sessions is up to the revoke listeners.
import { betweenQueries, type Db, type Queryable } from "./db/db";

export type SessionRecord = {
  id: string;
  deviceId: string;
  spi: number;
  gateway: string;
  openedAt: string;
  closedAt: string | null;
  closeReason: string | null;
};

type Row = { id: string; device_id: string; spi: number; gateway: string; opened_at: Date; closed_at: Date | null; close_reason: string | null };

const COLUMNS = "id::text AS id, device_id, spi, gateway, opened_at, closed_at, close_reason";
/** Open sessions a query of listOpen reads at most. */
const OPEN_PAGE = 2000;

function record(r: Row): SessionRecord {
  return {
    id: r.id, deviceId: r.device_id, spi: r.spi, gateway: r.gateway, openedAt: r.opened_at.toISOString(),
    closedAt: r.closed_at === null ? null : r.closed_at.toISOString(), closeReason: r.close_reason,
  };
}

export class SessionLog {
  constructor(private readonly db: Db) {}

  /** A session was established; returns its id (for recordClose). The device must exist and not be revoked. */
  async recordOpen(s: { deviceId: string; spi: number; gateway: string }): Promise<string> {
    if (!Number.isInteger(s.spi) || s.spi < 0 || s.spi >= 1 << 24) throw new RangeError("sessions: spi must be a 24-bit integer");
    const rows = await this.db.query<{ id: string }>(
      `INSERT INTO sessions (device_id, spi, gateway)
       SELECT id, $2, $3 FROM devices WHERE id = $1 AND revoked_at IS NULL RETURNING id::text AS id`,
      [s.deviceId, s.spi, s.gateway],
    );
    if (rows.length === 0) throw new Error(`sessions: device ${s.deviceId} is unknown or revoked`);
    return rows[0].id;
  }

  /** The session ended. Returns false if it was already closed (e.g. by a revocation) or is unknown. */
  async recordClose(id: string, reason = "closed"): Promise<boolean> {
    if (!/^\d{1,18}$/.test(id)) return false;
    const rows = await this.db.query(
      "UPDATE sessions SET closed_at = now(), close_reason = $2 WHERE id = $1::bigint AND closed_at IS NULL RETURNING id",
      [id, reason],
    );
    return rows.length === 1;
  }

  /**
   * recordOpen for a holder's report, which may come twice (a backbone message resent after a reconnect):
   * an open row of the same gateway, SPI and device is that session, and its id is returned; another
   * device's open row on the SPI ended unreported, and is closed as replaced. Not atomic: the caller
   * serialises the writes for one gateway (session-recorder.ts).
   */
  async reportOpen(s: { deviceId: string; spi: number; gateway: string }): Promise<string> {
    const open = await this.db.query<{ id: string; device_id: string }>(
      "SELECT id::text AS id, device_id FROM sessions WHERE gateway = $1 AND spi = $2 AND closed_at IS NULL", [s.gateway, s.spi],
    );
    const same = open.find((r) => r.device_id === s.deviceId);
    if (same !== undefined) return same.id;
    if (open.length > 0) await this.reportClose(s.gateway, s.spi, "replaced");
    return this.recordOpen(s);
  }

  /** The session a holder reported open on this gateway and SPI ended; false if no such row is open. */
  async reportClose(gateway: string, spi: number, reason = "closed"): Promise<boolean> {
    const rows = await this.db.query(
      "UPDATE sessions SET closed_at = now(), close_reason = $3 WHERE gateway = $1 AND spi = $2 AND closed_at IS NULL RETURNING id",
      [gateway, spi, reason],
    );
    return rows.length > 0;
  }

  /** Closes every open session a gateway reported (it restarted: none of them survive in it). */
  async closeAllOf(gateway: string, reason = "gateway restarted"): Promise<number> {
    const rows = await this.db.query(
      "UPDATE sessions SET closed_at = now(), close_reason = $2 WHERE gateway = $1 AND closed_at IS NULL RETURNING id",
      [gateway, reason],
    );
    return rows.length;
  }

  async list(filter: { openOnly?: boolean; deviceId?: string; limit?: number } = {}): Promise<SessionRecord[]> {
    const rows = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM sessions
       WHERE ($1::boolean IS NOT TRUE OR closed_at IS NULL) AND ($2::text IS NULL OR device_id = $2)
       ORDER BY sessions.id DESC LIMIT $3`,
      [filter.openOnly ?? false, filter.deviceId ?? null, filter.limit ?? 1000],
    );
    return rows.map(record);
  }

  /**
   * The open sessions, newest first, as the rows of `held` where it has them (a session row changes only when
   * it closes, and then it is no longer open): only the ids are read for those, a third of the whole rows'
   * cost at 10,000 open sessions on PGlite. Both reads go OPEN_PAGE rows a query, a turn of the event loop
   * between queries: at 100,000 open sessions on PGlite, which runs in the controller's thread, the ids
   * alone held it 309-361 ms every 5 s while a console was open, and a first read of the rows 1.45 s.
   */
  async listOpen(held: ReadonlyMap<string, SessionRecord>, limit = 100_000): Promise<SessionRecord[]> {
    const ids: string[] = [];
    let below: string | undefined;
    while (ids.length < limit) {
      const n = Math.min(OPEN_PAGE, limit - ids.length);
      const page = await this.db.query<{ id: string }>(
        `SELECT id::text AS id FROM sessions WHERE closed_at IS NULL${below === undefined ? "" : " AND id < $2::bigint"} ORDER BY sessions.id DESC LIMIT $1`,
        below === undefined ? [n] : [n, below],
      );
      for (const r of page) ids.push(r.id);
      if (page.length < n) break;
      below = page[page.length - 1].id;
      await betweenQueries();
    }
    const unknown = ids.filter((id) => !held.has(id));
    const fresh = new Map<string, SessionRecord>();
    for (let at = 0; at < unknown.length; at += OPEN_PAGE) {
      if (at > 0) await betweenQueries();
      const rows = await this.db.query<Row>(`SELECT ${COLUMNS} FROM sessions WHERE id = ANY($1::bigint[])`, [unknown.slice(at, at + OPEN_PAGE)]);
      for (const r of rows) fresh.set(r.id, record(r));
    }
    const out: SessionRecord[] = [];
    for (const id of ids) {
      const s = held.get(id) ?? fresh.get(id);
      if (s !== undefined) out.push(s);
    }
    return out;
  }
}

/** Inside a revocation's transaction: marks the device's open sessions closed. */
export async function closeSessionsOf(tx: Queryable, deviceId: string, reason: string): Promise<number> {
  const rows = await tx.query(
    "UPDATE sessions SET closed_at = now(), close_reason = $2 WHERE device_id = $1 AND closed_at IS NULL RETURNING id",
    [deviceId, reason],
  );
  return rows.length;
}
