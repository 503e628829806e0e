// What the device side (host/gateway/devices.ts) tells telemetry and the session log, without costing the
// record path anything: handshakes and rejected records are reported as they happen (neither takes the
// fast path), everything else is read at each poll (every 50 ms) from counters the sessions and the
// DeviceGateway keep anyway, and reported as deltas.
//
// A session is reported open once it is confirmed (a record from the device opened in it), not when the
// handshake completes: a replayed psk hello completes a handshake no one can use, and must not leave a
// session row behind. It is reported closed when it ends (CLOSE, the error packet), when its device is
// ended (revoked, rotated), or when a newer session of the same device is confirmed (replaced).
import { REJECT_AUTH, REJECT_GPCOMP, REJECT_SEQ, REJECT_SPI } from "../../firmware/record/header";
import type { Endpoint } from "../../firmware/session/endpoint";
import { STATE_OPEN, type Session } from "../../firmware/session/session";
import type { KeyLimits } from "../telemetry/metrics";
import type { HandshakeOutcome } from "./responders";
import { MapSweep } from "./sweep";

export type { HandshakeOutcome };
/** Why a device record was refused; "gpcomp": it opened, but its GPComp payload was a bomb (docs/PROTOCOL.md 1.7). */
export type AuthFailureReason = "tag" | "replay" | "unknown-spi" | "malformed" | "gpcomp";
export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = ["tag", "replay", "unknown-spi", "malformed", "gpcomp"];

export interface DeviceObserver {
  handshake(mode: "dh" | "psk", outcome: HandshakeOutcome): void;
  /**
   * A device session was confirmed ("open") or ended ("close", with a reason: closed, ended, replaced).
   * `device` is the session's peer in hex (a dh kid or a psk device id), `spi` the one records to us carry,
   * `link` where the device was when the session was confirmed (the same on open and close).
   */
  session(event: "open" | "close", device: string, spi: number, link: string, reason?: string): void;
  authFailure(reason: AuthFailureReason, count: number): void;
  /** `records` records sealed or opened under key epoch `epoch` (the index i of K_i) since the last report. */
  keyRecords(epoch: number, records: number): void;
}

/** What the watch reads of a device's state in the DeviceGateway. */
export type DeviceView = { ep: Endpoint | undefined; last: string };
/** The DeviceGateway's counters of packets that never reach a session. */
export type DropCounters = { unknownSpi: number; malformed: number };

type Watched = { device: string; spi: number; link: string; received: number; sent: number };

/** A record rejected by a session (minus sessionReceive's negative result) as an auth-failure reason. */
export function rejectReason(code: number): AuthFailureReason {
  return code === REJECT_AUTH ? "tag" : code === REJECT_SEQ ? "replay" : code === REJECT_SPI ? "unknown-spi" : code === REJECT_GPCOMP ? "gpcomp" : "malformed";
}

export class SessionWatch {
  private readonly watched = new Map<Session, Watched>();
  /** sample() reads the watched sessions a slice at a time. */
  private readonly sweep = new MapSweep(this.watched);
  /** Each device's latest session reported open. */
  private readonly latest = new Map<string, Session>();
  /** Reported closed: never reported again (a forged record can point a device's endpoint back at one briefly). */
  private readonly ended = new WeakSet<Session>();
  private readonly epochs = new Map<number, number>();
  private last: DropCounters = { unknownSpi: 0, malformed: 0 };

  constructor(private readonly observer: DeviceObserver) {}

  /** A record a session refused (epInput's negative result). */
  rejected(code: number): void {
    this.observer.authFailure(rejectReason(code), 1);
  }

  /**
   * Call it from the DeviceGateway's poll with the devices that poll visited (a slice of them: see
   * DeviceGateway.poll): their new sessions are reported, and as many watched sessions, taken in turn, are
   * read and closed when they ended, so each call costs the same however large the fleet.
   */
  sample(visited: readonly [string, DeviceView][], exists: (device: string) => boolean, drops: DropCounters): void {
    this.drops(drops);
    for (const [device, d] of visited) {
      if (d.ep === undefined) continue;
      this.consider(device, d.ep.session, d.last);
      this.consider(device, d.ep.old, d.last);
    }
    this.sweep.next(Math.max(visited.length, 1), (s, w) => {
      this.account(s, w);
      if (!exists(w.device)) this.close(s, w, "ended");
      else if (s.state !== STATE_OPEN) this.close(s, w, "closed");
    });
    for (const [epoch, n] of this.epochs) this.observer.keyRecords(epoch, n);
    this.epochs.clear();
  }

  /**
   * How close the most used key of any confirmed session is to its suite's limits (docs/PROTOCOL.md 1.3):
   * read at a scrape, one look per session, so it is exact whatever the sweep has visited.
   */
  keyLimits(): KeyLimits {
    let records = 0, forgeries = 0;
    for (const s of this.watched.keys()) {
      const suite = s.out.policy.suite;
      records = Math.max(records, s.out.sealed / suite.confidentialityLimit);
      forgeries = Math.max(forgeries, Math.max(s.inb.cur.failures, s.inb.nextFailures) / suite.integrityLimit);
    }
    return { records, forgeries };
  }

  private drops(now: DropCounters): void {
    const spi = now.unknownSpi - this.last.unknownSpi, malformed = now.malformed - this.last.malformed;
    this.last = { unknownSpi: now.unknownSpi, malformed: now.malformed };
    if (spi > 0) this.observer.authFailure("unknown-spi", spi);
    if (malformed > 0) this.observer.authFailure("malformed", malformed);
  }

  private consider(device: string, s: Session | undefined, link: string): void {
    if (s === undefined || !s.confirmed || s.state !== STATE_OPEN || this.watched.has(s) || this.ended.has(s)) return;
    const before = this.latest.get(device);
    if (before !== undefined) this.close(before, this.watched.get(before)!, "replaced");
    this.watched.set(s, { device, spi: s.inb.spi, link, received: 0, sent: 0 });
    this.latest.set(device, s);
    this.observer.session("open", device, s.inb.spi, link);
  }

  private close(s: Session, w: Watched, reason: string): void {
    this.account(s, w);
    this.watched.delete(s);
    this.ended.add(s);
    if (this.latest.get(w.device) === s) this.latest.delete(w.device);
    this.observer.session("close", w.device, w.spi, w.link, reason);
  }

  /**
   * Records since the last look, by the epoch of the key in use now: records of the 50 ms before a key
   * change are counted under the new epoch, which is all the precision a per-epoch total needs.
   */
  private account(s: Session, w: Watched): void {
    const opened = s.received - w.received, sealed = s.sent - w.sent;
    w.received = s.received;
    w.sent = s.sent;
    if (opened > 0) this.add(s.inb.cur.epoch.index, opened);
    if (sealed > 0) this.add(s.out.epoch.index, sealed);
  }

  private add(epoch: number, n: number): void {
    this.epochs.set(epoch, (this.epochs.get(epoch) ?? 0) + n);
  }
}
