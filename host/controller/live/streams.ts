// Server-sent event streams of the admin API (GET /v1/events): each one is an admin call like any other
// (authenticated, rate limited and audited once, when it opens), then held open and fed by the live feed.
// A stream is a door that stays open, so it is bounded on every side:
//   - connections: at most `perActor` per principal and `total` in all; past either the call gets 429;
//   - a heartbeat comment every `heartbeatMs`, so proxies and the client can tell a quiet stream from a
//     dead one (and an idle-timeout proxy in between keeps it);
//   - a lifetime: after `lifetimeMs` the stream says "bye" and ends, and the client opens a new one, which
//     authenticates and is audited again (a credential taken away stops working within that time);
//   - a client that does not read: past `maxBufferedBytes` waiting in its socket it is cut off ("slow"),
//     so one stalled reader cannot hold the controller's memory.
import type { ServerResponse } from "node:http";
import { HttpError } from "../http";
import type { Principal } from "../principal";
import type { FleetView } from "./feed";

export type StreamLimits = { perActor: number; total: number; heartbeatMs: number; lifetimeMs: number; maxBufferedBytes: number };

export const STREAM_LIMITS: StreamLimits = { perActor: 4, total: 64, heartbeatMs: 15_000, lifetimeMs: 600_000, maxBufferedBytes: 1 << 20 };

/** Which events a stream wants: the fleet's changes (the rows of its view), and with `device` that device's readings and commands. */
export type StreamFilter = { device?: string; view?: FleetView };

export type Stream = { principal: Principal; filter: StreamFilter; res: ServerResponse; opened: number };

export type StreamStats = { opened: number; refused: number; slow: number; expired: number; closed: number };

export class EventStreams {
  readonly stats: StreamStats = { opened: 0, refused: 0, slow: 0, expired: 0, closed: 0 };
  private readonly open = new Set<Stream>();
  private readonly timer: NodeJS.Timeout;
  readonly limits: StreamLimits;

  constructor(limits: Partial<StreamLimits> = {}, private readonly now: () => number = Date.now) {
    this.limits = { ...STREAM_LIMITS, ...limits };
    this.timer = setInterval(() => this.beat(), this.limits.heartbeatMs);
    this.timer.unref();
  }

  get size(): number {
    return this.open.size;
  }

  /** Whether some stream follows `device` (checked before an event for it is made). */
  follows(device: string): boolean {
    if (this.open.size === 0) return false;
    for (const s of this.open) if (s.filter.device === device) return true;
    return false;
  }

  /** The devices some stream follows. */
  watched(): Set<string> {
    const out = new Set<string>();
    for (const s of this.open) if (s.filter.device !== undefined) out.add(s.filter.device);
    return out;
  }

  /** Throws 429 when `p` may not open another stream now (checked before the call is audited as ok). */
  admit(p: Principal): void {
    const mine = [...this.open].filter((s) => s.principal.actor === p.actor).length;
    if (mine >= this.limits.perActor || this.open.size >= this.limits.total) {
      this.stats.refused++;
      const which = mine >= this.limits.perActor ? `${this.limits.perActor} per credential` : `${this.limits.total} in all`;
      throw new HttpError(429, "rate-limited", `too many event streams open (at most ${which}); close one first`, { "Retry-After": "5" });
    }
  }

  /** Starts the stream on `res` (its call already audited) with `first` as its opening events. */
  start(p: Principal, filter: StreamFilter, res: ServerResponse, first: [string, unknown][]): Stream {
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      // A proxy must not hold the events back to batch them.
      "X-Accel-Buffering": "no",
    });
    res.socket?.setNoDelay(true);
    const s: Stream = { principal: p, filter, res, opened: this.now() };
    this.open.add(s);
    this.stats.opened++;
    res.once("close", () => {
      if (this.open.delete(s)) this.stats.closed++;
    });
    res.write(`retry: 3000\n\n`);
    for (const [event, data] of first) this.write(s, event, data);
    return s;
  }

  /** Sends an event to every stream `to` accepts. */
  send(to: (s: Stream) => boolean, event: string, data: unknown): void {
    if (this.open.size === 0) return;
    let text: string | undefined;
    for (const s of this.open) {
      if (!to(s)) continue;
      text ??= frame(event, data);
      this.put(s, text);
    }
  }

  /** Sends an event to one stream, or per stream (`data` of undefined sends nothing to it). */
  each(event: string, data: (s: Stream) => unknown): void {
    for (const s of this.open) {
      const d = data(s);
      if (d !== undefined) this.write(s, event, d);
    }
  }

  /** Ends every stream (the controller is stopping). */
  closeAll(): void {
    clearInterval(this.timer);
    for (const s of this.open) s.res.end();
    this.open.clear();
  }

  private write(s: Stream, event: string, data: unknown): void {
    this.put(s, frame(event, data));
  }

  private put(s: Stream, text: string): void {
    if (s.res.writableLength > this.limits.maxBufferedBytes) {
      this.stats.slow++;
      this.open.delete(s);
      s.res.destroy();
      return;
    }
    s.res.write(text);
  }

  private beat(): void {
    const now = this.now();
    for (const s of [...this.open]) {
      if (now - s.opened >= this.limits.lifetimeMs) {
        this.stats.expired++;
        this.put(s, frame("bye", { reason: "stream lifetime reached; open a new one" }));
        this.open.delete(s);
        s.res.end();
      } else this.put(s, ": heartbeat\n\n");
    }
  }
}

/** One event in text/event-stream framing; JSON has no raw newlines, so `data` is one line. */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
