// The gateway's side of many devices: one responder endpoint per link source, behind the cheap checks a
// flood meets first. A handshake attempt costs the gateway up to 4 X25519; before it spends any:
//   1. the packet must be a well-formed handshake message of a type a responder accepts (size and type byte);
//   2. the source must have tokens left in its bucket (a few attempts per window, then nothing);
//   3. the table of sources with unconfirmed handshakes is bounded: a new one evicts the oldest unconfirmed,
//      and a source whose session confirmed is forgotten at the next poll, so the table's memory is bounded
//      however many sources there are.
// Records for established sessions skip all this and go straight to their endpoint (SPI checks, the AEAD).
import type { Endpoint, EndpointConfig } from "../../firmware/session/endpoint";
import { epInput, epNew, epPoll, epStart, epTakeOutput } from "../../firmware/session/endpoint";
import type { Outgoing } from "../../firmware/session/session";
import { messageType, MSG_DH_I1, MSG_DH_I2, MSG_PSK_I1, MSG_PSK_I2 } from "../../firmware/handshake/wire";
import { MapSweep, pollSlice } from "./sweep";

export type ResponderLimits = {
  /** Handshake messages a source may send per window before it is ignored until tokens refill. */
  burst: number;
  /** Window over which `burst` tokens refill (ms). */
  refillMs: number;
  /** Sources with a handshake in progress (or a session not yet confirmed) kept at once. */
  maxPending: number;
};

export const DEFAULT_LIMITS: ResponderLimits = { burst: 4, refillMs: 10_000, maxPending: 1024 };


type Source = { ep: Endpoint; tokens: number; refilledAt: number };

/** What became of a handshake message (for telemetry): "ok" when it completed the responder's side. */
export type HandshakeOutcome = "ok" | "failed" | "throttled" | "malformed" | "evicted";

export type ResponderStats = { throttled: number; malformed: number; evicted: number; handshakes: number; sources: number; pending: number };

export class ResponderTable {
  private readonly sources = new Map<string, Source>();
  /** Sources whose endpoint is not yet confirmed, oldest first (Map keeps insertion order). */
  private readonly pending = new Map<string, true>();
  readonly stats: ResponderStats = { throttled: 0, malformed: 0, evicted: 0, handshakes: 0, sources: 0, pending: 0 };
  private readonly sweep = new MapSweep(this.sources);

  constructor(
    private readonly config: (source: string) => EndpointConfig,
    private readonly limits: ResponderLimits = DEFAULT_LIMITS,
    private readonly report: (outcome: HandshakeOutcome) => void = () => {},
  ) {}

  /** A link to `source` came up: in order R the responder speaks first. */
  connect(source: string, now: number): Outgoing[] {
    if (!this.admit(source, now)) return [];
    const s = this.sourceFor(source, now);
    if (!s.ep.cfg.responderFirst) return [];
    epStart(s.ep, now);
    return epTakeOutput(s.ep);
  }

  /** One packet from `source`; returns what to send back. Never throws on bad input. */
  input(source: string, packet: Uint8Array, tid: number, now: number): Outgoing[] {
    const type = packet.length >= 4 && packet[0] === 0 && packet[1] === 0 && packet[2] === 0 ? messageType(packet) : 0;
    if (type === 0) {
      // A record: only an existing endpoint can use it.
      const s = this.sources.get(source);
      if (s === undefined) return [];
      epInput(s.ep, packet, tid, now);
      if (s.ep.confirmed && this.pending.delete(source)) this.stats.pending = this.pending.size;
      return epTakeOutput(s.ep);
    }
    if (type < 0 || !(type === MSG_DH_I1 || type === MSG_DH_I2 || type === MSG_PSK_I1 || type === MSG_PSK_I2)) {
      this.stats.malformed++;
      this.report("malformed");
      return [];
    }
    if (!this.admit(source, now)) return [];
    const s = this.sourceFor(source, now);
    const before = s.ep.handshakes, failures = s.ep.failures;
    epInput(s.ep, packet, tid, now);
    if (s.ep.handshakes !== before) {
      this.stats.handshakes++;
      this.report("ok");
    } else if (s.ep.failures !== failures) this.report("failed");
    return epTakeOutput(s.ep);
  }

  /**
   * Timers of the endpoints (retries, confirmation timeouts), a slice of them per call. A source whose
   * session is confirmed is forgotten: its records go to the endpoint by SPI (the DeviceGateway holds it),
   * so the table keeps only handshakes in progress, at most maxPending of them, whatever the number of
   * sources that ever came.
   */
  poll(now: number): Outgoing[][] {
    const out: Outgoing[][] = [];
    this.sweep.next(pollSlice(this.sources.size), (source, s) => {
      if (s.ep.confirmed) {
        this.sources.delete(source);
        this.pending.delete(source);
        return;
      }
      epPoll(s.ep, now);
      out.push(epTakeOutput(s.ep));
    });
    this.stats.sources = this.sources.size;
    this.stats.pending = this.pending.size;
    return out;
  }

  endpoint(source: string): Endpoint | undefined {
    return this.sources.get(source)?.ep;
  }

  /** Token bucket per source, checked before any public-key work. */
  private admit(source: string, now: number): boolean {
    const s = this.sources.get(source);
    if (s === undefined) return true; // a new source starts with a full bucket (see sourceFor)
    const refill = Math.floor(((now - s.refilledAt) / this.limits.refillMs) * this.limits.burst);
    if (refill > 0) {
      s.tokens = Math.min(this.limits.burst, s.tokens + refill);
      s.refilledAt = now;
    }
    if (s.tokens <= 0) {
      this.stats.throttled++;
      this.report("throttled");
      return false;
    }
    s.tokens--;
    return true;
  }

  private sourceFor(source: string, now: number): Source {
    let s = this.sources.get(source);
    if (s === undefined) {
      // Bounded half-open state: make room by dropping the oldest source that has not confirmed.
      while (this.pending.size >= this.limits.maxPending) {
        const oldest = this.pending.keys().next().value as string;
        this.pending.delete(oldest);
        this.sources.delete(oldest);
        this.stats.evicted++;
        this.report("evicted");
      }
      s = { ep: epNew(this.config(source)), tokens: this.limits.burst - 1, refilledAt: now };
      this.sources.set(source, s);
    }
    if (!s.ep.confirmed) this.pending.set(source, true);
    this.stats.sources = this.sources.size;
    this.stats.pending = this.pending.size;
    return s;
  }
}
