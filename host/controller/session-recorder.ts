// Session rows (./sessions.ts) from those who hold device sessions: the controller's own responders in relay
// mode (a DeviceObserver, host/gateway/observer.ts) and terminate gateways (SESSION_EVENT over the
// backbone, host/backbone/session-event.ts). Writes are queued per gateway and run in order (an open
// before its close, a gateway's restart before its new sessions), off the packet path: a failed write is
// logged, never thrown, and when the database falls far behind, reports are dropped and counted.
import type { SessionEvent } from "../backbone/frame";
import { readSessionEvent } from "../backbone/session-event";
import type { Logger } from "../telemetry/log";
import type { SessionLog } from "./sessions";

export type SessionRecorderStats = { written: number; failed: number; dropped: number; malformed: number };

/** A report that was written: a session opened (with the link its holder named, if any) or closed. */
export type SessionWritten =
  | { event: "open"; gateway: string; device: string; spi: number; link?: string }
  | { event: "close"; gateway: string; spi: number; reason: string }
  | { event: "all-closed"; gateway: string; reason: string };

export class SessionRecorder {
  readonly stats: SessionRecorderStats = { written: 0, failed: 0, dropped: 0, malformed: 0 };
  private readonly chains = new Map<string, Promise<void>>();
  private pending = 0;

  /** `deviceOf`: the registry's device id for a session's peer (a dh kid or a psk device id, in hex). */
  constructor(
    private readonly sessions: SessionLog,
    private readonly deviceOf: (peer: string) => string,
    private readonly log: Logger,
    private readonly maxPending = 10_000,
    /** Told of each report once it is written (the live feed: ./live/feed.ts). */
    private readonly onWritten?: (w: SessionWritten) => void,
  ) {}

  /**
   * A session held for `gateway` was confirmed ("open", `text` the link it is on when the holder names it)
   * or ended ("close", `text` its reason).
   */
  report(gateway: string, event: "open" | "close", peer: string, spi: number, text?: string): void {
    if (event === "open") this.opened(gateway, peer, spi, text);
    else this.closed(gateway, spi, text ?? "closed");
  }

  private opened(gateway: string, peer: string, spi: number, link: string | undefined): void {
    const deviceId = this.deviceOf(peer);
    const w: SessionWritten = { event: "open", gateway, device: deviceId, spi };
    if (link !== undefined) w.link = link;
    this.queue(w, () => this.sessions.reportOpen({ deviceId, spi, gateway }));
  }

  private closed(gateway: string, spi: number, reason: string): void {
    this.queue({ event: "close", gateway, spi, reason }, () => this.sessions.reportClose(gateway, spi, reason));
  }

  /** Every session the gateway reported is gone (it restarted, or this controller did and held them). */
  allClosed(gateway: string, reason: string): void {
    this.queue({ event: "all-closed", gateway, reason }, () => this.sessions.closeAllOf(gateway, reason));
  }

  /** A terminate gateway's SESSION_EVENT. */
  fromGateway(gateway: string, m: SessionEvent): void {
    const n = readSessionEvent(m);
    if (typeof n === "string") {
      this.stats.malformed++;
      this.log.warn("ignored a session event", { gateway, problem: n });
    } else if (n.event === "all-closed") this.allClosed(gateway, n.text);
    else if (n.event !== "command") this.report(gateway, n.event, n.device, n.spi, n.text);
  }

  /** Resolves once every write queued so far has been tried. */
  async idle(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }

  private queue(what: SessionWritten, write: () => Promise<unknown>): void {
    const gateway = what.gateway;
    if (this.pending >= this.maxPending) {
      if (this.stats.dropped++ % 1000 === 0) this.log.warn("session log falling behind: reports dropped", { gateway, dropped: this.stats.dropped });
      return;
    }
    this.pending++;
    const run = async () => {
      try {
        await write();
        this.stats.written++;
        this.onWritten?.(what);
      } catch (e) {
        this.stats.failed++;
        this.log.warn("a session report was not recorded", { ...what, error: e instanceof Error ? e.message : String(e) });
      } finally {
        this.pending--;
      }
    };
    const next = (this.chains.get(gateway) ?? Promise.resolve()).then(run);
    this.chains.set(gateway, next);
    void next.then(() => {
      if (this.chains.get(gateway) === next) this.chains.delete(gateway);
    });
  }
}
