// The cluster's figures in the controller's Prometheus registry (host/telemetry/metrics.ts), read from the
// counters the outbox and the command dispatch keep, at each scrape. Every label value is fixed here.
//   sesame_outbox_readings_total{outcome}  stored (new), duplicate (a copy: acknowledged, not published),
//                                          published, released (the broker did not take it), taken-over (a
//                                          row another controller had claimed and left), lost-claim (a row
//                                          claimed here that another took over while this one's heartbeat lapsed),
//                                          already-published (taken over, and seen at the broker: marked only)
//   sesame_outbox_held                     rows claimed by this controller and not yet published
//   sesame_cluster_commands_total{event}   handed (to a gateway or a relay session here), refused (no session
//                                          there: waits for the device), notified (another controller serves
//                                          the gateway), settled (acked, lost or waiting, as reported)
import type { Metric, Registry } from "prom-client";
import type { Cluster } from "./cluster";

/** One sample; a histogram's name its series (`<name>_bucket`, `_sum`, `_count`). */
export type Sample = { labels: Record<string, string>; value: number; metricName?: string };

/** A metric read at each scrape. */
export function metric(name: string, help: string, type: "counter" | "gauge" | "histogram", read: () => Sample[]): Metric<string> {
  const get = async () => ({ name, help, type, aggregator: "sum", values: read() });
  return { name, help, type, aggregator: "sum", get, reset: () => undefined } as unknown as Metric<string>;
}

export function registerClusterMetrics(registry: Registry, cluster: () => Cluster | undefined): void {
  registry.registerMetric(metric("sesame_outbox_readings_total", "Readings through the outbox, by outcome (stored, duplicate, published, released, taken-over, lost-claim, already-published).", "counter", () => {
    const s = cluster()?.readings.stats;
    const n = (v: number | undefined) => v ?? 0;
    return [["stored", n(s?.stored)], ["duplicate", n(s?.duplicates)], ["published", n(s?.published)], ["released", n(s?.released)], ["taken-over", n(s?.takenOver)], ["lost-claim", n(s?.lostClaims)], ["already-published", n(s?.alreadyPublished)]]
      .map(([outcome, value]) => ({ labels: { outcome: outcome as string }, value: value as number }));
  }));
  registry.registerMetric(metric("sesame_outbox_held", "Readings claimed by this controller and not yet published.", "gauge", () => [{ labels: {}, value: cluster()?.readings.held ?? 0 }]));
  registry.registerMetric(metric("sesame_cluster_commands_total", "Commands this controller handed out, had refused, notified another controller about, and settled from a gateway's report.", "counter", () => {
    const d = cluster()?.dispatch.stats;
    return (["handed", "refused", "notified", "settled"] as const).map((event) => ({ labels: { event }, value: d?.[event] ?? 0 }));
  }));
}
