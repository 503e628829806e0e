// Latency as a histogram with fine, fixed buckets, plus a sliding window for "P50/P95/P99 right now".
//
// Why a histogram and not prom-client's Summary: the gateway's goal is hundreds of thousands of messages per
// second per core, and a Summary observe (t-digest pushes, measured ~3 us here) would cost more than the
// AEAD it times; prom-client's Histogram is ~0.6 us and this one (a binary search and two increments) less.
// Histograms also aggregate across processes (gateway + controller) and give any quantile over any window in
// PromQL: histogram_quantile(0.99, rate(sesame_message_latency_seconds_bucket[1m])).
// Precision: ten buckets per decade (the R10 series 1, 1.25, 1.6, 2, 2.5, 3.15, 4, 5, 6.3, 8) from 1 us to
// 10 s, so a quantile read from buckets is within one bucket (at most 28 %) of the true value, and within a
// few percent when values spread over a bucket (log interpolation).
//
// For the live status line and for readers without PromQL, the last `windowMs` is kept as a ring of
// `slots` partial histograms (like a Summary's maxAgeSeconds/ageBuckets) and exported as gauges.

const R10 = [1, 1.25, 1.6, 2, 2.5, 3.15, 4, 5, 6.3, 8];

/** Upper bounds in seconds, 1e-6 .. 10, ascending. Observations above the last fall in +Inf. */
export const LATENCY_BUCKETS: readonly number[] = (() => {
  const out: number[] = [];
  for (let exp = -6; exp < 1; exp++) for (const m of R10) out.push(Number((m * 10 ** exp).toPrecision(3)));
  out.push(10);
  return out;
})();

/** Index of the first bucket whose bound is >= v (Prometheus `le` is inclusive); LATENCY_BUCKETS.length for +Inf. */
export function bucketIndex(v: number): number {
  let lo = 0, hi = LATENCY_BUCKETS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (LATENCY_BUCKETS[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The q-quantile (0..1) of the non-cumulative bucket counts `counts`, interpolated geometrically inside the
 * bucket it falls in (buckets are log-spaced). NaN when there are no observations. Values in +Inf report the
 * last finite bound: "at least 10 s".
 */
export function quantileFromBuckets(counts: ArrayLike<number>, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  if (total === 0) return NaN;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c > 0 && below + c >= rank) {
      if (i >= LATENCY_BUCKETS.length) return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1];
      const upper = LATENCY_BUCKETS[i];
      const lower = i === 0 ? upper / 1.25 : LATENCY_BUCKETS[i - 1];
      const frac = Math.max(0, (rank - below) / c);
      return lower * (upper / lower) ** frac;
    }
    below += c;
  }
  return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1];
}

export type WindowOptions = { windowMs: number; slots: number; now: () => number };

/** One label set's latencies: cumulative buckets for /metrics, and a ring of recent slots for quantiles now. */
export class LatencyRecorder {
  /** Non-cumulative counts since start; index LATENCY_BUCKETS.length is +Inf. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;
  private readonly ring: Float64Array[];
  private slot = 0;
  private slotStart: number;
  private readonly slotMs: number;

  constructor(private readonly win: WindowOptions) {
    this.ring = Array.from({ length: win.slots }, () => new Float64Array(LATENCY_BUCKETS.length + 1));
    this.slotMs = win.windowMs / win.slots;
    this.slotStart = win.now();
  }

  /** One observation in seconds. Negative, NaN and infinite values are ignored (a clock step must not poison the sum). */
  observe(seconds: number): void {
    if (!(seconds >= 0) || seconds === Infinity) return;
    const i = bucketIndex(seconds);
    this.counts[i]++;
    this.sum += seconds;
    this.count++;
    this.rotate();
    this.ring[this.slot][i]++;
  }

  /** Bucket counts over roughly the last windowMs (the current slot plus the previous slots - 1). */
  recent(): Float64Array {
    this.rotate();
    const out = new Float64Array(LATENCY_BUCKETS.length + 1);
    for (const r of this.ring) for (let i = 0; i < out.length; i++) out[i] += r[i];
    return out;
  }

  private rotate(): void {
    const now = this.win.now();
    let steps = Math.floor((now - this.slotStart) / this.slotMs);
    if (steps <= 0) return;
    // After a long idle gap, clear each slot once instead of looping once per elapsed slot.
    if (steps > this.ring.length) steps = this.ring.length;
    for (let s = 0; s < steps; s++) {
      this.slot = (this.slot + 1) % this.ring.length;
      this.ring[this.slot].fill(0);
    }
    this.slotStart = now - ((now - this.slotStart) % this.slotMs);
  }
}
