// The device side's figures into a Metrics (host/telemetry/metrics.ts): the observer the gateway (terminate
// mode) and the controller (relay mode) give their DeviceGateway, and the gateway process's own counters.
import type { Metrics } from "../telemetry/metrics";
import { AUTH_FAILURE_REASONS, type DeviceObserver } from "./observer";

/** Handshakes, auth failures and key use to `metrics`; session events to `session`, if given. */
export function metricsObserver(metrics: Metrics, session: DeviceObserver["session"] = () => {}): DeviceObserver {
  // Every reason's counter exists from the start at 0, so the first refused record is an increase PromQL can see.
  for (const reason of AUTH_FAILURE_REASONS) metrics.authFailure(reason, 0);
  return {
    handshake: (mode, outcome) => metrics.handshake(mode, outcome),
    authFailure: (reason, count) => metrics.authFailure(reason, count),
    keyRecords: (epoch, records) => metrics.keyUse(epoch, records),
    session,
  };
}

/** The gateway's counters this module reads (GatewayStats in ./gateway.ts). */
/** upBytes / downBytes: application payload bytes, which only a terminating gateway sees (relay: 0). */
export type GatewayCounters = { up: number; down: number; upBytes: number; downBytes: number; dropped: number; relayedUp: number; relayedDown: number };

/**
 * A gateway's message counters as deltas into its Metrics, read on its timer rather than counted per
 * message on the hot path. In relay mode the messages are the device records carried still sealed.
 * Bytes are counted where messages are opened: the controller (relay), or not at all here (terminate).
 */
export class GatewayTelemetry {
  private last: GatewayCounters = { up: 0, down: 0, upBytes: 0, downBytes: 0, dropped: 0, relayedUp: 0, relayedDown: 0 };

  constructor(
    readonly metrics: Metrics,
    private readonly mode: string,
    private readonly stats: GatewayCounters,
  ) {}

  /** Watches the backbone queue and the devices online (read at each scrape). */
  watch(backboneQueue: () => number, online?: () => number): void {
    this.metrics.watchQueue("backbone-out", backboneQueue);
    if (online !== undefined) this.metrics.watchDevicesOnline(online);
  }

  sample(): void {
    const s = this.stats, l = this.last;
    this.metrics.message("up", this.mode, s.upBytes - l.upBytes, s.up - l.up + (s.relayedUp - l.relayedUp));
    this.metrics.message("down", this.mode, s.downBytes - l.downBytes, s.down - l.down + (s.relayedDown - l.relayedDown));
    this.metrics.queueDropped("backbone-out", s.dropped - l.dropped);
    this.last = { up: s.up, down: s.down, upBytes: s.upBytes, downBytes: s.downBytes, dropped: s.dropped, relayedUp: s.relayedUp, relayedDown: s.relayedDown };
  }
}
