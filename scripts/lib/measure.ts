// Throughput measurement for benchmarks: several timed rounds, the median reported, so one noisy round on
// a shared 2-core machine does not decide a figure. Peers are measured in the same run, interleaved.
import { readFileSync } from "node:fs";
import { constants, PerformanceObserver } from "node:perf_hooks";

export type Rate = { opsPerSec: number; rounds: number[] };

/** Calls fn in batches for about `ms` per round, `rounds` times; returns the median ops/s. */
export function rate(fn: () => void, ms = 250, rounds = 5): Rate {
  for (let i = 0; i < 200; i++) fn(); // warm up the JIT
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const [n, ns] = callsFor(fn, ms, 50);
    results.push((n * 1e9) / ns);
  }
  return { opsPerSec: median(results), rounds: results };
}

/** Calls fn, `block` calls between clock reads, until `ms` have passed: the calls made and the ns they took. */
export function callsFor(fn: () => void, ms: number, block: number): [number, number] {
  let n = 0;
  const start = process.hrtime.bigint();
  const stop = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  while (now < stop) {
    for (let i = 0; i < block; i++) fn();
    n += block;
    now = process.hrtime.bigint();
  }
  return [n, Number(now - start)];
}

/** Median wall time in ms of `runs` calls to fn (for slow operations such as a portable X25519). */
export function timeEach(fn: () => void, runs: number): number {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  return median(t);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmt(n: number): string {
  if (n >= 1e6) return (n / 1e6).toFixed(2) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return n.toFixed(n < 10 ? 2 : 0);
}

/** Prints rows as an aligned text table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const all = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(all[0]), w.map((x) => "-".repeat(x)).join("  "), ...all.slice(1).map(line)].join("\n");
}

/** A live progress line on stderr (a TTY) that the final output replaces. */
export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY) return;
  const width = 24;
  const filled = Math.round((done / total) * width);
  process.stderr.write(`\r${label.padEnd(40).slice(0, 40)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`);
  if (done === total) process.stderr.write("\r" + " ".repeat(80) + "\r");
}

/**
 * The machine's CPU time so far, in clock ticks over all CPUs (Linux /proc/stat), and how much of it the
 * hypervisor took for others (steal): on a virtual machine, a stretch of stolen time stalls a run however
 * quiet the machine looks from inside. Undefined where /proc/stat is not there.
 */
export function cpuTicks(): { steal: number; total: number } | undefined {
  let line: string;
  try {
    line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  } catch {
    return undefined;
  }
  // cpu user nice system idle iowait irq softirq steal ...
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
}

/** The share of CPU time stolen between two cpuTicks() readings (NaN without them). */
export function stealShare(a: ReturnType<typeof cpuTicks>, b: ReturnType<typeof cpuTicks>): number {
  if (a === undefined || b === undefined || b.total === a.total) return NaN;
  return (b.steal - a.steal) / (b.total - a.total);
}

/**
 * The main thread's CPU time so far, in ms (Linux /proc/self/task: clock ticks, so 10 ms steps), NaN where it
 * is not there. process.cpuUsage() counts every thread of the process, the collector's helpers included.
 */
export function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime (fields 14 and 15); USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/**
 * Counts the collections by kind (scavenges, and the rest: mark-compact, incremental, weak callbacks) until
 * stop(), and their pauses (ms) in the order they ran. Node reports them a little after they ran: read the
 * counts after a turn of the event loop.
 */
export function countCollections(): { count: () => number; stop: () => { minor: number; major: number; pauses: number[] } } {
  let minor = 0, major = 0;
  const pauses: number[] = [];
  const take = (es: readonly { duration: number }[]) => {
    for (const e of es) {
      pauses.push(e.duration);
      if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++; else major++;
    }
  };
  const obs = new PerformanceObserver((l) => take(l.getEntries()));
  obs.observe({ entryTypes: ["gc"] });
  return { count: () => minor + major, stop: () => (take(obs.takeRecords()), obs.disconnect(), { minor, major, pauses }) };
}
