// Bridged device messages on one core (`npm run bench bridge`): device records in, backbone records out,
// next to the physical floor, one raw node:crypto AES-128-CCM open per message, timed in the same run
// (set-up: bridge-fleet.ts).
//   - terminate: Gateway.input per record: SPI lookup, the session's receive path (replay window, CCM open),
//     dedup of message ids, the reading written into the backbone queue, the ACK record back to the device
//     once the controller acknowledged the backbone message (holdAcks).
//   - relay: Gateway.input per record: the record, still sealed, as a RELAY_UP into the batch.
// max: records handed over in bursts of BURST per turn of the event loop (as socket reads come), as fast as
// the gateway takes them. Paced: bursts on a 1 ms timer, real time. A message's latency runs from the moment
// its record is handed to the gateway to the sealing of the backbone record that carries it. Every rate is
// given by wall time and by CPU time (the process's user + system seconds: steadier on a shared machine);
// paced runs also give the share of the machine's CPU time the hypervisor stole meanwhile (a stolen
// stretch stalls the event loop however quiet the machine looks from inside).
import { cpus, loadavg } from "node:os";
import { getHeapStatistics } from "node:v8";
import { encodeData } from "../../firmware/runtime/messages";
import { DATA_BODY_AT, type DeviceRef } from "../../host/gateway/device-side";
import { countCollections, fmt, median, progress, table } from "../lib/measure";
import { BURST, Bridge, fleet, Fleet, PAYLOAD, records, Records, sliceRecords, turn } from "./bridge-fleet";
import { deviceSide, floor, percentiles, run, Run, settle } from "./bridge-run";

const DEVICES = Number(process.env.SESAME_BRIDGE_DEVICES ?? 1000);
const ROUNDS = Number(process.env.SESAME_BENCH_ROUNDS ?? 5);
/** Slices per round (each measured on every path in turn). */
const SLICES = 4;
/** Records per throughput round. */
const PER_ROUND = Number(process.env.SESAME_BRIDGE_RECORDS ?? 200_000);
/** The paced runs: msg/s offered, for this many ms, this many times (the scaling bench's paced runs too). */
export const PACED_RATE = 50_000;
export const PACED_MS = 2000;
export const PACED_RUNS = 3;
/** The P99 goal, and the offered rates tried (ascending) for the largest that keeps under it. */
const P99_GOAL_MS = 2;
const SEARCH_RATES = [10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 100_000];
const SEARCH_MS = 1000;

const pctSteal = (x: number) => (Number.isNaN(x) ? "n/a" : `${(x * 100).toFixed(0)}%`);

export const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");

/**
 * JS heap bytes allocated per reading by `step` (which handles the readings it returns), the median over
 * windows in which no collection ran (a collection would hide what was allocated before it).
 */
export async function allocatedPerReading(step: () => Promise<number>, windows = 12): Promise<number> {
  const gcs = countCollections();
  const per: number[] = [];
  try {
    for (let w = 0; w < windows * 3 && per.length < windows; w++) {
      global.gc?.();
      await turn();
      await turn();
      const g = gcs.count();
      const h = getHeapStatistics().used_heap_size;
      const n = await step();
      const bytes = getHeapStatistics().used_heap_size - h;
      await turn();
      await turn();
      if (gcs.count() === g) per.push(bytes / n);
    }
  } finally {
    gcs.stop();
  }
  return per.length > 0 ? median(per) : NaN;
}

/** Readings through the whole terminate path, bursts as in run(), without run()'s latency bookkeeping. */
function terminateSteps(f: Bridge, r: Records): () => Promise<number> {
  let at = 0;
  return async () => {
    const from = at;
    for (let b = 0; b < 4; b++, at += BURST) {
      for (let i = at; i < at + BURST; i++) f.gw.input(f.devices[r.dev[i]].link, r.recs[i]);
      f.gw.takeOutput();
      f.ack();
      await turn();
    }
    f.ack();
    await turn();
    f.gw.takeOutput();
    return at - from;
  };
}

/** Readings through the device side alone (deviceSide(), a slice at a time). */
function deviceSteps(f: Bridge, r: Records): () => Promise<number> {
  const parts: Records[] = [];
  for (let at = 0; at < r.recs.length; at += 4 * BURST) parts.push(sliceRecords(r, at, at + 4 * BURST));
  let k = 0;
  return async () => {
    const part = parts[k++];
    deviceSide(f, part);
    return part.recs.length;
  };
}

/**
 * Readings through what follows the device side alone: the gateway's uplink (the reading written into the
 * backbone queue, remembered until acknowledged), the batch sealed into its AES-256-GCM record, the
 * controller's acknowledgement taken: WINDOW readings, `perTurn` per turn of the event loop (one backbone
 * record each). The devices are the fleet's own, caught as they deliver readings.
 */
async function backboneSteps(f: Bridge, perTurn: number): Promise<() => Promise<number>> {
  const dg = f.gw.devices!;
  const sink = dg.onUplink!;
  const states: DeviceRef[] = [];
  dg.onUplink = (d, id, body, off, len, at) => (states.push(d), sink(d, id, body, off, len, at));
  await run(f, records(f.devices, 2 * BURST), 0);
  dg.onUplink = sink;
  const message = encodeData(1, new Uint8Array(PAYLOAD));
  let id = 1 << 20;
  return async () => {
    for (let b = 0; b < WINDOW; b += perTurn) {
      const now = Date.now();
      for (let i = 0; i < perTurn; i++) sink(states[i % states.length], id++, message, DATA_BODY_AT, PAYLOAD, now);
      f.ack();
      await turn();
    }
    f.ack();
    await turn();
    return WINDOW;
  };
}

const WINDOW = 2048;

export type Allocation = { terminate: number; device: number; backbone: number; perRecord: number; perReading: number; perTurn: [number, number] };

/**
 * Bytes allocated per reading: the whole terminate path, the device side alone, and what follows it alone
 * at two batch sizes, which splits the latter into bytes per backbone record (and turn) and per reading.
 */
export async function allocation(f: Fleet): Promise<Allocation> {
  // Enough records for every window tried (3 per window counted, 4 bursts each).
  const per = 100 * BURST;
  const r = records(f.terminate.devices, 2 * per);
  const part = (k: number): Records => sliceRecords(r, k * per, (k + 1) * per);
  await settle();
  const terminate = await allocatedPerReading(terminateSteps(f.terminate, part(0)), 8);
  const device = await allocatedPerReading(deviceSteps(f.terminate, part(1)), 8);
  const perTurn: [number, number] = [64, 512];
  const small = await allocatedPerReading(await backboneSteps(f.terminate, perTurn[0]), 8);
  const large = await allocatedPerReading(await backboneSteps(f.terminate, perTurn[1]), 8);
  // bytes per reading = perRecord / readings per record + perReading, at both sizes
  const perRecord = (small - large) / (1 / perTurn[0] - 1 / perTurn[1]);
  return { terminate, device, backbone: large, perRecord, perReading: large - perRecord / perTurn[1], perTurn };
}

/** The largest offered rate (of SEARCH_RATES) whose median P99 over three runs stays under the goal, and each rate's P99. */
async function largestUnderGoal(f: Bridge): Promise<{ rate: number; tried: string }> {
  let best = 0;
  const tried: string[] = [];
  for (const rate of SEARCH_RATES) {
    const runs: Run[] = [];
    for (let k = 0; k < 3; k++) {
      const r = records(f.devices, Math.round((rate * SEARCH_MS) / 1000));
      await settle();
      runs.push(await run(f, r, rate));
    }
    const p99 = median(runs.map((x) => x.p99));
    tried.push(`${rate / 1000}k: ${p99.toFixed(2)} (steal ${pctSteal(median(runs.map((x) => x.steal)))})`);
    if (p99 >= P99_GOAL_MS) break;
    best = rate;
  }
  return { rate: best, tried: tried.join(", ") };
}

export async function benchBridge(): Promise<string> {
  const loadBefore = load();
  const f = fleet(DEVICES);
  const res: { [k: string]: number[] } = {};
  const put = (k: string, v: number) => (res[k] ??= []).push(v);
  const steps = ROUNDS + 4;
  // Warm-up (JIT), not counted.
  {
    const w = records(f.terminate.devices, 20_000);
    floor(f.terminate.devices, w);
    await run(f.terminate, w, 0);
    await run(f.relay, w, 0);
    deviceSide(f.terminate, records(f.terminate.devices, 20_000));
  }
  // A round takes its records in SLICES slices, each measured on every path in turn, so that the noise of a
  // shared machine falls on all of them alike; a path's rate in the round is its records over its time.
  for (let r = 0; r < ROUNDS; r++) {
    progress(`bridge: round ${r + 1} of ${ROUNDS}`, r, steps);
    const n = Math.floor(PER_ROUND / SLICES);
    const secs: { [k: string]: number } = {};
    const add = (k: string, x: { secs: number; cpuSecs: number }) => {
      secs[k] = (secs[k] ?? 0) + x.secs;
      secs[k + "Cpu"] = (secs[k + "Cpu"] ?? 0) + x.cpuSecs;
    };
    const tl: Float64Array[] = [], rl: Float64Array[] = [];
    let acks = 0, tBatches = 0, rBatches = 0;
    for (let k = 0; k < SLICES; k++) {
      const recs = records(f.terminate.devices, n);
      const other = records(f.terminate.devices, n);
      await settle();
      add("floor", floor(f.terminate.devices, recs));
      await settle();
      const t = await run(f.terminate, recs, 0);
      add("terminate", t);
      tl.push(t.lat);
      acks += t.acksPerMsg * n;
      tBatches += t.batches;
      await settle();
      const x = await run(f.relay, recs, 0); // relay opens nothing: the same records do
      add("relay", x);
      rl.push(x.lat);
      rBatches += x.batches;
      await settle();
      add("device", deviceSide(f.terminate, other));
    }
    for (const k of Object.keys(secs)) put(k, (n * SLICES) / secs[k]);
    const tp = percentiles(tl), rp = percentiles(rl);
    put("tP50", tp.p50);
    put("tP99", tp.p99);
    put("rP50", rp.p50);
    put("rP99", rp.p99);
    put("acks", acks / (n * SLICES));
    put("tBatch", (n * SLICES) / tBatches);
    put("rBatch", (n * SLICES) / rBatches);
  }
  // Paced: PACED_RATE msg/s offered for PACED_MS, PACED_RUNS runs per mode; then the largest rate under the goal.
  const paced: { [m: string]: Run[] } = { terminate: [], relay: [] };
  for (const mode of ["terminate", "relay"] as const) {
    progress(`bridge: ${PACED_RATE} msg/s, ${mode}`, ROUNDS + (mode === "relay" ? 1 : 0), steps);
    for (let r = 0; r < PACED_RUNS; r++) {
      const recs = records(f.terminate.devices, (PACED_RATE * PACED_MS) / 1000);
      await settle();
      paced[mode].push(await run(f[mode], recs, PACED_RATE));
    }
  }
  progress("bridge: largest rate with P99 under 2 ms", ROUNDS + 2, steps);
  const search = await largestUnderGoal(f.terminate);
  progress("bridge: bytes allocated per reading", ROUNDS + 3, steps);
  const alloc = await allocation(f);
  progress("bridge", steps, steps);
  const gc = paced.terminate.flatMap((x) => x.gcPauses);
  const m = (k: string) => median(res[k]);
  const ms = (x: number) => x.toFixed(x < 10 ? 2 : 1);
  const pm = (mode: string, k: "p50" | "p99" | "rate" | "steal") => median(paced[mode].map((x) => x[k]));
  const ratio = (k: string, of = "floor") => median(res[k].map((v, i) => v / res[of][i])); // per round: both measured together
  const pct = (x: number) => (x * 100).toFixed(0) + "%";
  const row = (name: string, k: string, lat?: [string, string, string]) => [
    name, fmt(m(k)), pct(ratio(k)), fmt(m(k + "Cpu")), pct(ratio(k + "Cpu", "floorCpu")),
    lat ? ms(m(lat[0] + "P50")) : "", lat ? ms(m(lat[0] + "P99")) : "", lat ? ms(pm(lat[2], "p50")) : "", lat ? ms(pm(lat[2], "p99")) : "",
  ];
  const rows = [
    row("floor: raw CCM open per record", "floor"),
    row("terminate (Gateway, to sealed backbone record)", "terminate", ["t", "", "terminate"]),
    row("  of which device side (DeviceGateway + ACKs)", "device"),
    row("relay (Gateway, to sealed backbone record)", "relay", ["r", "", "relay"]),
  ];
  const b = (x: number) => (Number.isNaN(x) ? "n/a (a collection in every window)" : `${x.toFixed(0)} B`);
  return table(["path (20-byte readings, one core)", "msg/s", "of floor", "msg/CPU-s", "of floor", "P50 ms max", "P99 ms max", `P50 ms @${PACED_RATE / 1000}k`, `P99 ms @${PACED_RATE / 1000}k`], rows) +
    `\n${DEVICES} devices with dh sessions (real handshakes), readings as DATA messages in 40-byte compact records, devices interleaved;` +
    ` medians of ${ROUNDS} rounds of ${PER_ROUND} records, the floor timed in each round on the same records, in ${SLICES} slices taken in turn` +
    ` with the other paths ("of floor": median of the per-round ratios, by wall time and by CPU time).` +
    `\nmax = as fast as it goes, bursts of ${BURST} records per event-loop turn; @${PACED_RATE / 1000}k = ${PACED_RATE} msg/s offered in bursts on a 1 ms timer` +
    ` for ${PACED_MS / 1000} s, median of ${PACED_RUNS} (achieved ${fmt(pm("terminate", "rate"))} and ${fmt(pm("relay", "rate"))} msg/s; CPU time the hypervisor stole meanwhile: ${pctSteal(pm("terminate", "steal"))} and ${pctSteal(pm("relay", "steal"))}).` +
    ` Latency: record handed to the gateway -> the backbone record carrying it sealed.` +
    `\nTerminate @${PACED_RATE / 1000}k: ${gc.length} collections in the ${paced.terminate.length} runs (${(gc.length / (paced.terminate.length * PACED_MS / 1000)).toFixed(1)}/s), pauses median ${ms(median(gc))} ms,` +
    ` ${gc.filter((x) => x >= P99_GOAL_MS).length} of ${P99_GOAL_MS} ms or more (longest ${ms(Math.max(0, ...gc))} ms): the readings handed over before a pause and not yet sealed wait it out, and those due during it come after it at once.` +
    `\nTerminate: the largest offered rate with P99 under ${P99_GOAL_MS} ms: ${search.rate > 0 ? fmt(search.rate) + " msg/s" : "none tried"} (median P99 ms of 3 runs of ${SEARCH_MS / 1000} s: ${search.tried}).` +
    `\nTerminate: ${m("acks").toFixed(2)} ACK records to the devices per reading; ${m("tBatch").toFixed(0)} readings per backbone record at max (relay: ${m("rBatch").toFixed(0)}).` +
    `\nJS heap allocated per reading (no collection in the window): terminate path ${b(alloc.terminate)}, device side alone ${b(alloc.device)},` +
    ` after the device side (uplink into the backbone queue, batch, sealed AES-256-GCM record, acknowledgement) ${b(alloc.backbone)} at ${alloc.perTurn[1]} readings a record` +
    ` = ${alloc.perRecord.toFixed(0)} B per record and turn + ${alloc.perReading.toFixed(1)} B per reading (fitted from ${alloc.perTurn[0]} and ${alloc.perTurn[1]} readings a record).` +
    ` Backbone: the gateway's real BackbonePeer on a real backbone session; it stops at the sealed AES-256-GCM record (what one writev sends); the controller's acknowledgements are played to it.` +
    `\nLoad average (1, 5, 15 min) on this machine: ${loadBefore} before, ${load()} after (${cpus().length} cores).`;
}
