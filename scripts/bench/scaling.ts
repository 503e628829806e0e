// The bridge at scale (`npm run bench scaling`): the terminate path of bridge.ts with 100 to 100,000 devices
// (memory per device session, throughput next to the floor in the same run), and the gateway with its
// device side on two worker threads (host/gateway/shards.ts) next to one thread, msgs/s per core.
// The small fleets are there for the shape of the curve: the same code on the same records costs more per
// reading as the devices' state outgrows the CPU's caches, and a small fleet's bursts hold several readings
// per device, which one ACK record answers.
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { fmt, median, progress, table } from "../lib/measure";
import { load, PACED_MS, PACED_RATE, PACED_RUNS } from "./bridge";
import { Bridge, fleet, records, threadedFleet } from "./bridge-fleet";
import { floor, run, runThrough, settle } from "./bridge-run";

const SIZES = (process.env.SESAME_SCALING_DEVICES ?? "100,1000,10000,100000").split(",").map(Number);
const ROUNDS = Number(process.env.SESAME_BENCH_ROUNDS ?? 3);
const PER_ROUND = Number(process.env.SESAME_SCALING_RECORDS ?? 100_000);
// Threads pay off where one thread slows down: with many devices (1,000 and 10,000 here).
const THREADED_DEVICES = (process.env.SESAME_THREADED_DEVICES ?? "1000,10000").split(",").map(Number);

type Memory = { heap: number; rss: number; external: number };
async function memory(): Promise<Memory> {
  await settle();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss, external: m.external };
}
/** RSS moves by some MB on its own (the allocator gives pages back, or not): a smaller change is not shown per device. */
const RSS_NOISE = 16 << 20;
const perDevice = (a: Memory, b: Memory, n: number) =>
  `${((b.heap - a.heap) / n / 1024).toFixed(1)} / ${Math.abs(b.rss - a.rss) < RSS_NOISE ? "-" : ((b.rss - a.rss) / n / 1024).toFixed(1)}`;

async function atScale(n: number): Promise<(string | number)[]> {
  const before = await memory();
  const f = fleet(n);
  const made = await memory();
  const t = f.terminate;
  const w = records(t.devices, 20_000);
  await run(t, w, 0);
  const rates: { [k: string]: number[] } = { floor: [], terminate: [], acks: [] };
  for (let r = 0; r < ROUNDS; r++) {
    progress(`scaling: ${n} devices, round ${r + 1}`, r, ROUNDS);
    const recs = records(t.devices, PER_ROUND);
    await settle();
    rates.floor.push(PER_ROUND / floor(t.devices, recs).secs);
    await settle();
    const x = await run(t, recs, 0);
    rates.terminate.push(x.rate);
    rates.acks.push(x.acksPerMsg);
  }
  const used = await memory();
  const ratio = median(rates.terminate.map((v, i) => v / rates.floor[i]));
  // Let the fleet go before the next size (the relay gateway's and the bench's own state included).
  await f.terminate.gw.close();
  await f.relay.gw.close();
  return [n, f.handshakeSecs.toFixed(0), perDevice(before, made, n), perDevice(before, used, n), fmt(median(rates.terminate)), fmt(median(rates.floor)), (ratio * 100).toFixed(0) + "%", median(rates.acks).toFixed(2)];
}

/**
 * One thread and `threads` worker threads, interleaved rounds, each through runThrough(); then the added
 * latency of each at PACED_RATE offered, PACED_RUNS runs each in turn (run(): a reading from its record's
 * hand-over to the sealing of the backbone record that carries it, however many turns the workers take).
 */
async function threaded(threads: number, devices: number): Promise<string[][]> {
  const one: Bridge = fleet(devices).terminate;
  const many = await threadedFleet(devices, threads);
  await runThrough(one, records(one.devices, 20_000));
  await runThrough(many, records(many.devices, 20_000));
  const res: { [k: string]: number[] } = { one: [], many: [], oneCpu: [], manyCpu: [], oneP50: [], manyP50: [], oneP99: [], manyP99: [] };
  for (let r = 0; r < ROUNDS; r++) {
    progress(`scaling: ${devices} devices on ${threads} device threads, round ${r + 1}`, r, ROUNDS);
    for (const [k, f] of [["one", one], ["many", many]] as const) {
      const recs = records(f.devices, PER_ROUND);
      await settle();
      const x = await runThrough(f, recs);
      res[k].push(PER_ROUND / x.secs);
      res[k + "Cpu"].push(x.cpuSecs / x.secs);
    }
  }
  for (let r = 0; r < PACED_RUNS; r++) {
    progress(`scaling: ${devices} devices, ${PACED_RATE} msg/s offered, run ${r + 1}`, r, PACED_RUNS);
    for (const [k, f] of [["one", one], ["many", many]] as const) {
      const recs = records(f.devices, (PACED_RATE * PACED_MS) / 1000);
      await settle();
      const x = await run(f, recs, PACED_RATE);
      res[k + "P50"].push(x.p50);
      res[k + "P99"].push(x.p99);
    }
  }
  progress("scaling", 1, 1);
  await many.gw.close();
  await one.gw.close();
  const m = (k: string) => median(res[k]);
  const cores = Math.min(cpus().length, threads);
  return [
    [String(devices), "this thread (DeviceGateway)", fmt(m("one")), m("oneCpu").toFixed(2), fmt(m("one") / m("oneCpu")), fmt(m("one")), "1.00x", m("oneP50").toFixed(2), m("oneP99").toFixed(2)],
    [String(devices), `${threads} worker threads (DeviceShards)`, fmt(m("many")), m("manyCpu").toFixed(2), fmt(m("many") / m("manyCpu")), fmt(m("many") / cores), (m("many") / m("one")).toFixed(2) + "x", m("manyP50").toFixed(2), m("manyP99").toFixed(2)],
  ];
}

/** threaded() at each size of THREADED_DEVICES, as one table. */
async function threadedTable(threads: number): Promise<string> {
  const rows: string[][] = [];
  for (const n of THREADED_DEVICES) rows.push(...(await threaded(threads, n)));
  const cores = Math.min(cpus().length, threads);
  const at = `@${PACED_RATE / 1000}k`;
  return table(["devices", "device side", "msg/s", "CPU cores busy", "msg/s per core busy", `msg/s per core (of ${cores})`, "vs one thread", `P50 ms ${at}`, `P99 ms ${at}`], rows) +
    `\nReadings through Gateway.input to sealed backbone records (terminate, ACKs after the controller's acknowledgement),` +
    ` at most ${8} bursts in flight; medians of ${ROUNDS} interleaved rounds of ${PER_ROUND} readings. "CPU cores busy": this process's CPU seconds` +
    ` (every thread) per second of the run. The main thread keeps the links and the backbone; the workers hold the sessions, by SPI.` +
    ` ${at}: ${PACED_RATE} msg/s offered in bursts on a 1 ms timer for ${PACED_MS / 1000} s, median of ${PACED_RUNS} runs in turn; latency from a record's hand-over` +
    ` to the sealing of the backbone record carrying its reading.`;
}

/** This machine's data caches per level (Linux sysfs), for reading the per-device memory next to them. */
function caches(): string {
  const dir = "/sys/devices/system/cpu/cpu0/cache";
  const levels: string[] = [];
  for (let i = 0; i < 8; i++) {
    try {
      const type = readFileSync(`${dir}/index${i}/type`, "utf8").trim();
      if (type === "Instruction") continue;
      const shared = readFileSync(`${dir}/index${i}/shared_cpu_list`, "utf8").trim();
      const level = `L${readFileSync(`${dir}/index${i}/level`, "utf8").trim()} ${readFileSync(`${dir}/index${i}/size`, "utf8").trim()}`;
      levels.push(/[-,]/.test(shared) ? `${level} (shared by CPUs ${shared})` : level);
    } catch {
      break;
    }
  }
  return levels.length > 0 ? `Data caches of one core here: ${levels.join(", ")}.` : "";
}

export async function benchScaling(): Promise<string> {
  const loadBefore = load();
  const rows: (string | number)[][] = [];
  for (const n of SIZES) rows.push(await atScale(n));
  const t = await threadedTable(2);
  return table(["devices", "handshakes, s", "KiB per device: heap / RSS, sessions made", "after traffic", "terminate msg/s", "floor msg/s", "of floor", "ACK records per reading"], rows) +
    `\nEach size: real dh handshakes through one gateway (one thread), then ${ROUNDS} rounds of ${PER_ROUND} readings, devices interleaved, the floor` +
    ` (one raw CCM open per record) timed in each round on the same records. Memory: the process's JS heap and RSS after two full collections,` +
    ` per device, once the sessions are made and again after the traffic (RSS: "-" when it moved by less than ${RSS_NOISE >> 20} MB, which it does on its own; a key gets OpenSSL contexts from its second use on, up to` +
    ` ${16384} keys; the bench's own device-side state, about 0.2 KiB a device, is included). ${caches()}` +
    ` Readings come in bursts of 256, devices interleaved: with fewer devices than that, a burst holds several readings of a device and` +
    ` the gateway answers them with one ACK record.` +
    `\n\nThe device side on worker threads, next to one thread, in the same run\n` + t +
    `\nLoad average (1, 5, 15 min): ${loadBefore} before, ${load()} after (${cpus().length} cores).`;
}
