// The controller's and gateway's numbers, in one prom-client Registry served at /metrics (./metrics-http.ts).
// What the SES guide's monitoring section asks for, in sesame's terms:
//   throughput          sesame_messages_total / sesame_message_bytes_total {direction, mode}
//   P50/P95/P99 latency sesame_message_latency_seconds (histogram, see ./latency.ts for why) and
//                       sesame_message_latency_recent_seconds {quantile} over the last window
//   queue lengths       sesame_queue_length {queue}, sesame_queue_dropped_total {queue} (refused when full)
//   handshakes          sesame_handshakes_total {mode, outcome}
//   auth failures       sesame_auth_failures_total {reason}
//   key usage           sesame_key_records_total {epoch}: records sealed or opened per key epoch, and
//                       sesame_key_limit_ratio {limit}: how close the most used live key is to a usage limit
//   devices online      sesame_devices_online
//   MQTT delivery       sesame_mqtt_{published,publish_failures,dropped,commands}_total, sesame_mqtt_connected
//   MQTT broker         sesame_mqtt_refused_total {what, reason}: what the embedded broker refused
//   listeners           sesame_listener_dropped_total {listener, reason}: connections closed before they
//                       authenticated (evicted, refused, silent, timeout, over-cap, malformed)
// Every label value is bounded (./labels.ts), so no input can grow the number of series without limit.
// Call sites are cheap: children are cached per label set, latency observation is a binary search.
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { Metric } from "prom-client";
import { LabelGuard } from "./labels";
import { LATENCY_BUCKETS, LatencyRecorder, quantileFromBuckets } from "./latency";
import { TallyCounter } from "./tally";
import type { Tally } from "./tally";

export type Direction = "up" | "down";

/**
 * The largest share of a per-key usage limit that any live session key has used (0..1): `records` sealed
 * under a sending key over the suite's q, `forgeries` (failed opens) under a receiving key over its v.
 */
export type KeyLimits = { records: number; forgeries: number };

export type MetricsOptions = {
  /** Milliseconds clock for the latency window and messages/s; injectable for tests. */
  now?: () => number;
  /** The window of the "recent" latency quantiles and the status line (default 60 s in 6 slots). */
  windowMs?: number;
  windowSlots?: number;
  /** Key epochs kept as their own label; older epochs are summed under epoch="older" (default 16). */
  maxEpochs?: number;
  /** Process CPU, memory, event-loop lag and GC from prom-client (default true). */
  processMetrics?: boolean;
};

/** What a live status line shows. Latencies in milliseconds over the recent window, null before any sample. */
export type StatusSnapshot = {
  online: number;
  messages: number;
  msgsPerSecond: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  handshakes: number;
  errors: number;
  queued: number;
};

type LatencySeries = { labels: { direction: string; mode: string }; rec: LatencyRecorder };

// Process CPU, memory, event-loop lag and GC belong to the process, however many Metrics it holds (a test or
// a bench makes many gateways): prom-client's collectors for them are made once, in a registry of their own,
// and each Metrics serves them after its own figures. Made per Metrics, each set held a GC observer that is
// never disconnected, and through it the Metrics' registry, its gauges' collect callbacks and the gateway or
// controller they read: every gateway ever made in the process stayed alive (a closed 30,000-device bench
// fleet kept the heap at 245 MB, 13 MB once let go), and every collection ran one more observer.
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: "sesame_process_" });
  }
  return processRegistry;
}

/**
 * The series of one histogram counted ahead (prom-client's Histogram only observes one value at a time):
 * counts[i] observations in (bounds[i - 1], bounds[i]], those above the last bound making up `count`, and
 * `sum` over all of them. Its `_bucket` series are cumulative, as the exposition format has them.
 */
export function histogramSeries(name: string, labels: Record<string, string>, bounds: readonly number[], counts: ArrayLike<number>, count: number, sum: number) {
  const out: { metricName: string; labels: Record<string, string>; value: number }[] = [];
  let cum = 0;
  for (let i = 0; i < bounds.length; i++) {
    cum += counts[i];
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: String(bounds[i]) }, value: cum });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: count });
  out.push({ metricName: `${name}_sum`, labels, value: sum });
  out.push({ metricName: `${name}_count`, labels, value: count });
  return out;
}

const QUANTILES = [0.5, 0.95, 0.99];
/** Label sets cached by the caller's raw strings. */
const CACHE = 64;

export class Metrics {
  readonly registry = new Registry();
  /** The process's own figures (processMetrics()), served after the registry's. */
  private readonly process: Registry | undefined;
  private readonly now: () => number;
  private readonly messages = new TallyCounter("sesame_messages_total", "Device messages carried, by direction (up: device to application) and gateway mode.", ["direction", "mode"]);
  private readonly bytes = new TallyCounter("sesame_message_bytes_total", "Application payload bytes carried, by direction and mode.", ["direction", "mode"]);
  private readonly queues: Gauge<"queue">;
  private readonly queueDrops: Counter<"queue">;
  private readonly handshakes: Counter<"mode" | "outcome">;
  private readonly authFailures: Counter<"reason">;
  private readonly online: Gauge<string>;
  private readonly mqttPublished: Counter<"kind">;
  private readonly mqttFailures: Counter<string>;
  private readonly mqttDropped: Counter<"reason">;
  private readonly mqttCommands: Counter<"outcome">;
  private readonly mqttUp: Gauge<string>;
  private readonly mqttRefusals: Counter<"what" | "reason">;

  private readonly modes = new LabelGuard(8);
  private readonly queueNames = new LabelGuard(32);
  private readonly handshakeModes = new LabelGuard(8);
  private readonly outcomes = new LabelGuard(16);
  private readonly reasons = new LabelGuard(32);
  private readonly kinds = new LabelGuard(8);

  /** By bounded label values "direction|mode". */
  private readonly latencies = new Map<string, LatencySeries>();
  private readonly trafficUp = new Map<string, { messages: Tally; bytes: Tally }>();
  private readonly trafficDown = new Map<string, { messages: Tally; bytes: Tally }>();
  private readonly latencyUp = new Map<string, LatencySeries>();
  private readonly latencyDown = new Map<string, LatencySeries>();
  private readonly queueLengths = new Map<string, number>();
  private readonly queueReaders = new Map<string, () => number>();
  private readonly listenerReaders = new Map<string, () => Record<string, number>>();
  private onlineReader: (() => number) | undefined;
  private keyLimitReader: (() => KeyLimits) | undefined;
  private onlineValue = 0;
  private readonly epochs = new Map<number, number>();
  private olderEpochs = 0;
  private readonly maxEpochs: number;
  private readonly windowMs: number;
  private readonly windowSlots: number;
  /** Plain tallies for the status line: reading prom-client values is async and slower. */
  private readonly totals = { messages: 0, handshakes: 0, errors: 0 };
  private last: { at: number; messages: number };

  constructor(opts: MetricsOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.maxEpochs = opts.maxEpochs ?? 16;
    this.windowMs = opts.windowMs ?? 60_000;
    this.windowSlots = opts.windowSlots ?? 6;
    this.last = { at: this.now(), messages: 0 };
    const registers = [this.registry];
    const self = this;

    this.registry.registerMetric(this.messages as unknown as Metric<string>);
    this.registry.registerMetric(this.bytes as unknown as Metric<string>);
    this.queues = new Gauge({
      name: "sesame_queue_length", help: "Items waiting in each bounded queue.", labelNames: ["queue"], registers,
      collect() {
        for (const [q, read] of self.queueReaders) this.set({ queue: q }, safeRead(read));
      },
    });
    this.queueDrops = new Counter({ name: "sesame_queue_dropped_total", help: "Messages a full bounded queue refused (dropped), by queue.", labelNames: ["queue"], registers });
    this.handshakes = new Counter({ name: "sesame_handshakes_total", help: "Session handshakes by mode (psk, dh) and outcome (ok, failed, throttled, timeout).", labelNames: ["mode", "outcome"], registers });
    this.authFailures = new Counter({ name: "sesame_auth_failures_total", help: "Authentication failures: records whose tag does not verify, replays, unknown keys, refused admin tokens.", labelNames: ["reason"], registers });
    this.online = new Gauge({
      name: "sesame_devices_online", help: "Devices with an established session.", registers,
      collect() {
        this.set(self.devicesOnlineNow());
      },
    });
    this.mqttPublished = new Counter({ name: "sesame_mqtt_published_total", help: "MQTT messages acknowledged by the broker, by kind (up, event).", labelNames: ["kind"], registers });
    this.mqttFailures = new Counter({ name: "sesame_mqtt_publish_failures_total", help: "MQTT publishes the broker or the client refused.", registers });
    this.mqttDropped = new Counter({ name: "sesame_mqtt_dropped_total", help: "Outgoing MQTT messages dropped, by reason (queue-full: oldest dropped while the broker was away; stopped).", labelNames: ["reason"], registers });
    this.mqttCommands = new Counter({ name: "sesame_mqtt_commands_total", help: "Commands received on the down topics, by outcome (delivered, malformed, rejected, failed).", labelNames: ["outcome"], registers });
    this.mqttUp = new Gauge({ name: "sesame_mqtt_connected", help: "1 while connected to the MQTT broker.", registers });
    this.mqttRefusals = new Counter({
      name: "sesame_mqtt_refused_total", labelNames: ["what", "reason"], registers,
      help: "What the embedded MQTT broker refused: connect (anonymous, bad-credentials, throttled, too-many-pending, timeout, full, client-id-taken), publish (not-allowed, retain, reserved), subscribe (not-allowed), packet (oversize, malformed).",
    });

    this.registry.registerMetric(this.latencyHistogram() as unknown as Metric<string>);
    this.registry.registerMetric(this.latencyRecentSummary() as unknown as Metric<string>);
    this.registry.registerMetric(this.keyEpochCounter() as unknown as Metric<string>);
    new Gauge({
      name: "sesame_key_limit_ratio",
      help: "Share of a per-key usage limit used by the most used live session key: records sealed / q (the key moves on by itself at 1), forgeries (failed opens) / v (the key is retired at 1).",
      labelNames: ["limit"], registers,
      collect() {
        const l = self.keyLimitReader === undefined ? { records: 0, forgeries: 0 } : safeLimits(self.keyLimitReader);
        this.set({ limit: "records" }, l.records);
        this.set({ limit: "forgeries" }, l.forgeries);
      },
    });
    this.registry.registerMetric(this.listenerCounter() as unknown as Metric<string>);
    if (opts.processMetrics ?? true) this.process = processMetrics();
  }

  // ---- traffic ----

  /** `count` messages totalling `bytes` payload bytes crossed the gateway or controller. */
  message(direction: Direction, mode: string, bytes: number, count = 1): void {
    if (!(count > 0)) return;
    const c = this.traffic(direction, mode);
    c.messages.value += count;
    if (bytes > 0) c.bytes.value += bytes;
    this.totals.messages += count;
  }

  /** One message's latency in seconds (for batches, observe each message or a sample of them). */
  latency(direction: Direction, mode: string, seconds: number): void {
    this.latencyOf(direction, mode).rec.observe(seconds);
  }

  // The caches below are keyed by what the caller passed (fast on the hot path) but hold at most CACHE entries,
  // and the series behind them are keyed by the bounded label values, so junk modes cannot grow either.

  private traffic(direction: Direction, mode: string): { messages: Tally; bytes: Tally } {
    const byMode = direction === "down" ? this.trafficDown : this.trafficUp;
    const hit = byMode.get(mode);
    if (hit !== undefined) return hit;
    const labels = [direction === "down" ? "down" : "up", this.modes.admit(mode)];
    const c = { messages: this.messages.child(labels), bytes: this.bytes.child(labels) };
    if (byMode.size < CACHE) byMode.set(mode, c);
    return c;
  }

  private latencyOf(direction: Direction, mode: string): LatencySeries {
    const byMode = direction === "down" ? this.latencyDown : this.latencyUp;
    const hit = byMode.get(mode);
    if (hit !== undefined) return hit;
    const labels = { direction: direction === "down" ? "down" : "up", mode: this.modes.admit(mode) };
    const key = `${labels.direction}|${labels.mode}`;
    let l = this.latencies.get(key);
    if (l === undefined) {
      l = { labels, rec: new LatencyRecorder({ windowMs: this.windowMs, slots: this.windowSlots, now: this.now }) };
      this.latencies.set(key, l);
    }
    if (byMode.size < CACHE) byMode.set(mode, l);
    return l;
  }

  // ---- queues and devices ----

  queueLength(queue: string, length: number): void {
    const q = this.queueNames.admit(queue);
    this.queueLengths.set(q, length);
    this.queues.set({ queue: q }, length);
  }

  /** Read a queue's length at every scrape and snapshot, instead of updating it on every change. */
  watchQueue(queue: string, read: () => number): void {
    const q = this.queueNames.admit(queue);
    this.queueReaders.set(q, read);
    // Its drop counter exists from the start at 0, so the first drop is an increase PromQL can see.
    this.queueDrops.inc({ queue: q }, 0);
  }

  /** `count` messages dropped because `queue` was full. */
  queueDropped(queue: string, count = 1): void {
    if (!(count > 0)) return;
    this.queueDrops.inc({ queue: this.queueNames.admit(queue) }, count);
    this.totals.errors += count;
  }

  devicesOnline(n: number): void {
    this.onlineValue = n;
  }

  watchDevicesOnline(read: () => number): void {
    this.onlineReader = read;
  }

  /**
   * Read a listener's counts of connections it closed before they authenticated (by reason) at every
   * scrape, e.g. the backbone's admission stats.
   */
  watchListener(listener: string, read: () => Record<string, number>): void {
    this.listenerReaders.set(this.queueNames.admit(listener), read);
  }

  // ---- sessions and keys ----

  handshake(mode: string, outcome: string): void {
    const o = this.outcomes.admit(outcome);
    this.handshakes.inc({ mode: this.handshakeModes.admit(mode), outcome: o });
    this.totals.handshakes++;
    if (o !== "ok") this.totals.errors++;
  }

  authFailure(reason: string, count = 1): void {
    this.authFailures.inc({ reason: this.reasons.admit(reason) }, count);
    this.totals.errors += count;
  }

  /** `records` records sealed or opened under key epoch `epoch` (the index i of K_i, or a master-key version). */
  keyUse(epoch: number, records = 1): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0 || !(records > 0)) return;
    const have = this.epochs.get(epoch);
    if (have !== undefined) {
      this.epochs.set(epoch, have + records);
      return;
    }
    if (this.epochs.size < this.maxEpochs) {
      this.epochs.set(epoch, records);
      return;
    }
    // Full: keep the newest epochs by their own label, fold the oldest into "older".
    let lowest = Infinity;
    for (const e of this.epochs.keys()) if (e < lowest) lowest = e;
    if (epoch < lowest) {
      this.olderEpochs += records;
      return;
    }
    this.olderEpochs += this.epochs.get(lowest) ?? 0;
    this.epochs.delete(lowest);
    this.epochs.set(epoch, records);
  }

  /** Read the live keys' use of their limits at every scrape (the sessions keep the counts anyway). */
  watchKeyLimits(read: () => KeyLimits): void {
    this.keyLimitReader = read;
  }

  // ---- MQTT delivery ----

  mqttPublish(kind: string): void {
    this.mqttPublished.inc({ kind: this.kinds.admit(kind) });
  }
  mqttPublishFailure(): void {
    this.mqttFailures.inc();
    this.totals.errors++;
  }
  mqttDrop(reason: string, count = 1): void {
    this.mqttDropped.inc({ reason: this.reasons.admit(reason) }, count);
    this.totals.errors += count;
  }
  mqttCommand(outcome: string): void {
    const o = this.outcomes.admit(outcome);
    this.mqttCommands.inc({ outcome: o });
    if (o === "malformed" || o === "failed") this.totals.errors++;
  }
  mqttConnected(up: boolean): void {
    this.mqttUp.set(up ? 1 : 0);
  }
  mqttRefused(what: string, reason: string): void {
    this.mqttRefusals.inc({ what: this.kinds.admit(what), reason: this.reasons.admit(reason) });
  }

  // ---- views ----

  /** Prometheus text exposition of everything above, and of the process. */
  async text(): Promise<string> {
    const own = await this.registry.metrics();
    return this.process === undefined ? own : `${own}\n${await this.process.metrics()}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Numbers for a status line; messages/s is measured since the previous snapshot (or since start). */
  snapshot(): StatusSnapshot {
    const now = this.now();
    const dt = (now - this.last.at) / 1000;
    const msgsPerSecond = dt > 0 ? (this.totals.messages - this.last.messages) / dt : 0;
    this.last = { at: now, messages: this.totals.messages };
    const recent = new Float64Array(LATENCY_BUCKETS.length + 1);
    for (const { rec } of this.latencies.values()) {
      const r = rec.recent();
      for (let i = 0; i < r.length; i++) recent[i] += r[i];
    }
    const ms = (q: number) => {
      const v = quantileFromBuckets(recent, q);
      return Number.isNaN(v) ? null : v * 1000;
    };
    let queued = 0;
    for (const [q, n] of this.queueLengths) if (!this.queueReaders.has(q)) queued += n;
    for (const read of this.queueReaders.values()) queued += safeRead(read);
    return {
      online: this.devicesOnlineNow(), messages: this.totals.messages, msgsPerSecond,
      p50Ms: ms(0.5), p95Ms: ms(0.95), p99Ms: ms(0.99),
      handshakes: this.totals.handshakes, errors: this.totals.errors, queued,
    };
  }

  private devicesOnlineNow(): number {
    return this.onlineReader === undefined ? this.onlineValue : safeRead(this.onlineReader);
  }

  // ---- metrics prom-client has no type for ----

  /** A histogram fed by LatencyRecorder (prom-client's Histogram cannot be fed pre-bucketed counts). */
  private latencyHistogram() {
    const name = "sesame_message_latency_seconds";
    const help = "Time from a message's arrival to its delivery (decrypt, bridge, publish), by direction and mode.";
    const get = async () => {
      const values = [...this.latencies.values()].flatMap(({ labels, rec }) => histogramSeries(name, labels, LATENCY_BUCKETS, rec.counts, rec.count, rec.sum));
      return { name, help, type: "histogram", aggregator: "sum", values };
    };
    return { name, help, type: "histogram", aggregator: "sum", get, reset: () => undefined };
  }

  /**
   * P50/P95/P99 over the recent window, readable straight from /metrics without PromQL: a summary (the type
   * whose series carry `quantile`), without _sum and _count, which the histogram has.
   */
  private latencyRecentSummary() {
    const name = "sesame_message_latency_recent_seconds";
    const help = `Latency quantiles over the last ${this.windowMs / 1000} s, from the histogram's buckets (within one bucket, <= 28 %).`;
    const get = async () => {
      const values: { labels: Record<string, string | number>; value: number }[] = [];
      for (const { labels, rec } of this.latencies.values()) {
        const recent = rec.recent();
        for (const q of QUANTILES) {
          const v = quantileFromBuckets(recent, q);
          if (!Number.isNaN(v)) values.push({ labels: { ...labels, quantile: q }, value: v });
        }
      }
      return { name, help, type: "summary", aggregator: "average", values };
    };
    return { name, help, type: "summary", aggregator: "average", get, reset: () => undefined };
  }

  private keyEpochCounter() {
    const name = "sesame_key_records_total";
    const help = `Records sealed or opened per key epoch; the newest ${this.maxEpochs} epochs by number, earlier ones as epoch="older".`;
    const get = async () => {
      const values = [...this.epochs.entries()].sort((a, b) => a[0] - b[0]).map(([e, n]) => ({ labels: { epoch: String(e) }, value: n }));
      if (this.olderEpochs > 0) values.unshift({ labels: { epoch: "older" }, value: this.olderEpochs });
      return { name, help, type: "counter", aggregator: "sum", values };
    };
    return { name, help, type: "counter", aggregator: "sum", get, reset: () => undefined };
  }

  private listenerCounter() {
    const name = "sesame_listener_dropped_total";
    const help = "Connections a listener closed before they authenticated, by listener and reason (evicted for a newer one, refused, silent or timeout: too slow, over-cap: too many from one address, malformed).";
    const get = async () => {
      const values: { labels: Record<string, string>; value: number }[] = [];
      for (const [listener, read] of this.listenerReaders) {
        for (const [reason, n] of Object.entries(read())) if (Number.isFinite(n)) values.push({ labels: { listener, reason: this.reasons.admit(reason) }, value: n });
      }
      return { name, help, type: "counter", aggregator: "sum", values };
    };
    return { name, help, type: "counter", aggregator: "sum", get, reset: () => undefined };
  }
}

function safeRead(read: () => number): number {
  try {
    const n = read();
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

function safeLimits(read: () => KeyLimits): KeyLimits {
  try {
    const l = read();
    return { records: Number.isFinite(l.records) ? l.records : 0, forgeries: Number.isFinite(l.forgeries) ? l.forgeries : 0 };
  } catch {
    return { records: 0, forgeries: 0 };
  }
}

/** One line for a terminal: "online 12 | 1520 msg/s | p50 0.21 ms  p99 1.90 ms | handshakes 14 | errors 0 | queued 0". */
export function statusLine(s: StatusSnapshot): string {
  const ms = (v: number | null) => (v === null ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(0));
  return `online ${s.online} | ${Math.round(s.msgsPerSecond)} msg/s | p50 ${ms(s.p50Ms)} ms  p99 ${ms(s.p99Ms)} ms | handshakes ${s.handshakes} | errors ${s.errors} | queued ${s.queued}`;
}
