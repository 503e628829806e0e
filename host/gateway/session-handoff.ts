// Sessions that survive their gateway (docs/PROTOCOL.md 3.8): a terminate gateway hands each device session
// to the controller as it changes, so a restarted gateway, or another one the device moves to, resumes it
// without a new handshake and without ever sealing twice under one (key, nonce).
//
//   - The SA policy's sequence storage (seqstore.ts: blocks reserved before use, as a board does for its saved
//     session) is this module's: every reservation the session makes is reported as SESSION_STATE, one block
//     further than the gateway itself may go, with the session's saved form (session.ts sessionSave: traffic
//     secrets, key indices, SPIs) and the top of its replay window. The controller stores it (keys wrapped by
//     its master key) and answers with the top it granted; the gateway seals its ACKs and commands only below
//     a granted top (maySeal), so a resumer, which starts at the stored top, never repeats a number.
//   - A record on an SPI the gateway does not hold is held (a few per SPI, a bounded number of SPIs) while the
//     controller is asked (SESSION_FETCH). Its answer resumes the session, or, for a state too old to resume,
//     has the gateway seal one CTRL_CLOSE with it so the device handshakes again at once; an SPI the
//     controller does not know (or a revoked device's) is remembered for a while and its records dropped.
//   - A controller that gave the session to another gateway answers this one's next report with "taken": the
//     session is dropped here (it may be fetched back when the device returns).
import { addTransport, sessionClose, sessionRestore, sessionSave, type Session } from "../../firmware/session/session";
import type { SaPolicy } from "../../firmware/session/sa";
import type { SeqStorage } from "../../firmware/session/seqstore";
import type { AppMessage, Handoff } from "../backbone/frame";
import { readGrant, sessionFetch, sessionState, spiOf } from "../backbone/session-handoff";
import { LORA, type LinkAddress } from "./device-side";

/** Seals stop this many numbers below the granted top: room for what is sealed outside the gate (CONFIRM, KEY_UPDATE). */
export const SEAL_MARGIN = 64;
/** The replay top is reported again once it moved this far (half the reference window). */
const RX_REPORT_EVERY = 32;
/**
 * Packets held per SPI while its state is fetched, SPIs fetched at once, and fetches per BLE link (one
 * connection, one device) per FETCH_WINDOW_MS: a device has one session, so a few cover its retries.
 */
const HELD_PER_SPI = 4;
const FETCHING_MAX = 1024;
const FETCHES_PER_LINK = 4;
const FETCH_WINDOW_MS = 10_000;
/** A fetch unanswered this long is dropped (the next record asks again); an unknown SPI is not asked again for this long. */
const FETCH_TIMEOUT_MS = 5000;
const UNKNOWN_MS = 60_000;
const UNKNOWN_MAX = 4096;
/** A session held at its gate this long since its last report is reported again (the answer was lost with a controller). */
const REGRANT_MS = 2000;

/**
 * A session handed over: what was last reported and what the controller granted. The device side keeps the
 * one seen() gave for its device's session and hands it back to maySeal(), which is asked for every ACK:
 * with a look-up in a WeakMap of a thousand sessions, maySeal alone was 3.8 % of a V8 profile of a
 * terminating gateway at 1,000 devices.
 */
export type Handed = { s: Session; spi: number; outIndex: number; inIndex: number; rxTop: number; grantIndex: number; granted: number; reportedAt: number; dropped: boolean };
type Fetch = { link: LinkAddress; packets: Uint8Array[]; at: number };

export type HandoffStats = { reported: number; fetched: number; resumed: number; closed: number; unknown: number; taken: number; refusedFetches: number; gated: number };

/** What the handoff needs of the device side that holds the sessions (host/gateway/devices.ts). */
export type HandoffHost = {
  /** A resumed session: hold it by its SPI, then take in the packets that waited for it. */
  adopt(s: Session, link: LinkAddress, packets: Uint8Array[], now: number): void;
  /** The controller gave the session to another gateway: forget it here. */
  forget(spi: number): void;
  /** Packets for a link (the CTRL_CLOSE of a session too old to resume). */
  send(link: LinkAddress, bytes: Uint8Array): void;
  /** The session on `spi` may seal again (a grant came): its device's output is due. */
  wake(spi: number, now: number): void;
};

const tagOfCounter = (name: string) => name.slice(2, name.lastIndexOf(":"));
/** The top of the current receiving key's replay window, -1 before anything was accepted under it. */
const rxTopOf = (s: Session) => (s.inb.cur.window.any ? s.inb.cur.window.top : -1);

export class SessionHandoff {
  readonly stats: HandoffStats = { reported: 0, fetched: 0, resumed: 0, closed: 0, unknown: 0, taken: 0, refusedFetches: 0, gated: 0 };
  /** The SA policy's sequence storage: reservations in memory, each also reported to the controller. */
  readonly storage: SeqStorage;
  private readonly counters = new Map<string, string>();
  private readonly byTag = new Map<string, Handed>();
  private readonly bySession = new WeakMap<Session, Handed>();
  private readonly bySpi = new Map<number, Handed>();
  private readonly fetching = new Map<number, Fetch>();
  private readonly unknown = new Map<number, number>();
  /** Per BLE link, fetches asked since the window began. */
  private readonly linkFetches = new Map<LinkAddress, { n: number; since: number }>();
  host: HandoffHost | undefined;
  private policy: SaPolicy | undefined;
  /** The time of the last poll. */
  private now = 0;

  constructor(private readonly send: (m: AppMessage) => boolean) {
    this.storage = {
      read: (name) => this.counters.get(name),
      write: (name, value) => {
        this.counters.set(name, value);
        // (Called before the counter takes the new limit: the report names it.)
        const h = this.byTag.get(tagOfCounter(name));
        if (h !== undefined) this.report(h, Number(value));
      },
    };
  }

  /** The policy sessions are restored under (its store must be this.storage). */
  use(policy: SaPolicy, host: HandoffHost): void {
    this.policy = policy;
    this.host = host;
  }

  /**
   * A session an authenticated record came in on: handed over from now on (reported at once the first time).
   * Its first block needs no grant: until a report of it is stored nothing can resume it, and once one is,
   * its top is past that block.
   */
  seen(s: Session): Handed {
    const known = this.bySession.get(s);
    if (known !== undefined) return known;
    const h: Handed = { s, spi: s.inb.spi, outIndex: -1, inIndex: -1, rxTop: -1, grantIndex: s.out.epoch.index, granted: s.out.seq.limit, reportedAt: 0, dropped: false };
    this.bySession.set(s, h);
    this.byTag.set(s.out.tag, h);
    this.bySpi.set(h.spi, h);
    this.report(h);
    return h;
  }

  /**
   * Whether the session may seal now: below the top the controller granted (true for a session not handed
   * over). `known`: what seen() gave for it, if the caller kept that (then no look-up).
   */
  maySeal(s: Session, known?: Handed): boolean {
    const h = known !== undefined && known.s === s && !known.dropped ? known : this.bySession.get(s);
    if (h === undefined || (h.grantIndex === s.out.epoch.index && s.out.seq.next + SEAL_MARGIN <= h.granted)) return true;
    this.stats.gated++;
    return false;
  }

  /**
   * From the device sweep, about once a second per device: report a receiving key or replay top that moved
   * on, or again a session waiting at its gate for a grant that did not come.
   */
  check(s: Session | undefined): void {
    const h = s === undefined ? undefined : this.bySession.get(s);
    if (h === undefined) return;
    const waiting = h.grantIndex !== s!.out.epoch.index || s!.out.seq.next + SEAL_MARGIN > h.granted;
    if (s!.inb.cur.epoch.index !== h.inIndex || rxTopOf(s!) - h.rxTop >= RX_REPORT_EVERY || (waiting && this.now - h.reportedAt >= REGRANT_MS)) this.report(h);
  }

  /**
   * A record on an SPI this gateway does not hold: true if it is held while the controller is asked (or was
   * asked already), false if it is dropped (an SPI known to be unknown, or too many fetches at once).
   */
  unknownRecord(spi: number, link: LinkAddress, packet: Uint8Array, now: number): boolean {
    const f = this.fetching.get(spi);
    if (f !== undefined) {
      if (f.packets.length < HELD_PER_SPI) f.packets.push(Uint8Array.from(packet));
      return true;
    }
    const until = this.unknown.get(spi);
    if (until !== undefined && now < until) return false;
    if (this.fetching.size >= FETCHING_MAX || (link !== LORA && !this.mayFetchOn(link, now))) {
      this.stats.refusedFetches++;
      return false;
    }
    this.fetching.set(spi, { link, packets: [Uint8Array.from(packet)], at: now });
    this.stats.fetched++;
    this.send(sessionFetch(spi));
    return true;
  }

  /** Timers: fetches never answered, unknown SPIs remembered long enough. */
  poll(now: number): void {
    this.now = now;
    for (const [spi, f] of this.fetching) if (now - f.at >= FETCH_TIMEOUT_MS) this.fetching.delete(spi);
    if (this.unknown.size > 0) for (const [spi, until] of this.unknown) if (now >= until) this.unknown.delete(spi);
  }

  /** A session ended here (closed, replaced, its device ended): nothing more is reported for it. */
  drop(spi: number): void {
    const h = this.bySpi.get(spi);
    if (h === undefined) return;
    h.dropped = true;
    this.bySpi.delete(spi);
    if (this.byTag.get(h.s.out.tag) === h) this.byTag.delete(h.s.out.tag);
    this.bySession.delete(h.s);
  }

  /** SESSION_ANSWER from the controller. Returns an error message for one that makes no sense, or "". */
  answer(m: Handoff, now: number): string {
    const spi = spiOf(m.device);
    const f = Buffer.from(m.payload).toString("utf8").split(",");
    if (spi < 0) return "a session answer without an SPI";
    if (f[0] === "grant") {
      const h = this.bySpi.get(spi);
      if (h === undefined) return "";
      const g = readGrant(f);
      if (g === undefined) return "a bad grant";
      if (g.outIndex > h.grantIndex || (g.outIndex === h.grantIndex && g.top > h.granted)) {
        h.grantIndex = g.outIndex;
        h.granted = g.top;
        this.host?.wake(spi, now);
      }
      return "";
    }
    if (f[0] === "taken") {
      this.stats.taken++;
      this.drop(spi);
      this.host?.forget(spi);
      return "";
    }
    const waiting = this.fetching.get(spi);
    this.fetching.delete(spi);
    if (f[0] === "none") {
      this.stats.unknown++;
      if (this.unknown.size >= UNKNOWN_MAX) this.unknown.clear();
      this.unknown.set(spi, now + UNKNOWN_MS);
      return "";
    }
    if ((f[0] !== "resume" && f[0] !== "close") || waiting === undefined) return waiting === undefined ? "" : `a session answer "${f[0]}"`;
    const s = this.restore(f, now);
    if (s === undefined) return "a session state that does not restore";
    const granted = Number(f[2]);
    if (f[0] === "close") {
      // Too old to resume: one authenticated CLOSE from the stored state, and the device handshakes again.
      addTransport(s, 1, waiting.link);
      sessionClose(s, now);
      for (const o of s.outbox) this.host?.send(waiting.link, o.bytes);
      this.stats.closed++;
      return "";
    }
    this.stats.resumed++;
    const h: Handed = { s, spi: s.inb.spi, outIndex: -1, inIndex: -1, rxTop: -1, grantIndex: s.out.epoch.index, granted, reportedAt: 0, dropped: false };
    this.bySession.set(s, h);
    this.byTag.set(s.out.tag, h);
    this.bySpi.set(h.spi, h);
    // Not reported: the controller stored it as it is now (this gateway its holder, its top moved on).
    h.outIndex = s.out.epoch.index;
    h.inIndex = s.inb.cur.epoch.index;
    h.rxTop = rxTopOf(s);
    h.reportedAt = now;
    this.host?.adopt(s, waiting.link, waiting.packets, now);
    return "";
  }

  /**
   * "resume|close, start, grantedTop, rxTop, <sessionSave's 9 fields>": the session with its sending counter
   * at `start` (the stored top, claimed for this gateway up to grantedTop) and its replay window at rxTop.
   */
  private restore(f: string[], now: number): Session | undefined {
    const policy = this.policy;
    const start = Number(f[1]), rxTop = Number(f[3]);
    if (policy === undefined || f.length !== 13 || ![start, Number(f[2]), rxTop].every(Number.isSafeInteger)) return undefined;
    const saved = f.slice(4).join(",");
    // The counter resumes at the stored top: seqOpen (inside sessionRestore) starts there and reserves on.
    const tag = `${f[4].slice(0, 12)}${f[6]}`;
    this.counters.set(`sq${tag}:${f[8]}`, String(start));
    const s = sessionRestore(policy, saved, now);
    if (s === undefined) return undefined;
    // Not the board's rule (refuse the restored key, 3.5): the window starts at the top the old holder
    // reported, so every number it may have accepted up to then is refused, and later ones are read once
    // more at most (docs/PROTOCOL.md 3.8).
    s.inb.wantRekey = false;
    const w = s.inb.cur.window;
    if (rxTop >= 0) {
      w.any = true;
      w.top = rxTop;
      w.bits.fill(0xffffffff);
    }
    return s;
  }

  /** SESSION_STATE: the session as it is, with a reservation one block past `limit`, the end of what it may use now. */
  private report(h: Handed, limit = h.s.out.seq.limit): void {
    const s = h.s;
    const top = limit + s.out.policy.seqBlock;
    h.outIndex = s.out.epoch.index;
    h.inIndex = s.inb.cur.epoch.index;
    h.rxTop = rxTopOf(s);
    h.reportedAt = this.now;
    this.stats.reported++;
    this.send(sessionState(s.peer, h.spi, top, h.rxTop, sessionSave(s)));
  }

  /** A BLE link's fetch budget (LoRa, one channel for every device, has only the global bound). */
  private mayFetchOn(link: LinkAddress, now: number): boolean {
    let w = this.linkFetches.get(link);
    if (w === undefined || now - w.since >= FETCH_WINDOW_MS) {
      if (this.linkFetches.size >= FETCHING_MAX) this.linkFetches.clear(); // bounded: addresses are the senders' to choose
      w = { n: 0, since: now };
      this.linkFetches.set(link, w);
    }
    return w.n++ < FETCHES_PER_LINK;
  }
}
