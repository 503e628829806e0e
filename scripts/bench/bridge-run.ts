// The bridge bench's runs (used by bridge.ts and scaling.ts) over a fleet of bridge-fleet.ts: records handed
// to the gateway at max rate or paced, each reading timed from its record's hand-over to the sealing of
// the backbone record that carries it; the floor (one raw CCM open per record) and the device side alone
// on the same records.
import type { DeviceRef } from "../../host/gateway/device-side";
import { DeviceGateway } from "../../host/gateway/devices";
import { countCollections, cpuTicks, stealShare } from "../lib/measure";
import { BURST, type Bridge, type Device, type Records, turn } from "./bridge-fleet";
import { rawOpen } from "./records";

/**
 * A settled heap before each measured run: two full collections move what was just made (the bench's own
 * input, a fresh array of a hundred thousand records) into the old generation, where the scavenges during
 * a run no longer copy it; then a few turns of the event loop, in which Node frees the native contexts
 * those collections found dead (every createCipheriv of the floor and of records() holds one, freed by a
 * weak callback Node runs later), and two more collections. Otherwise a run pays for the run before it:
 * measured, the terminate run after a floor run spent 55-66 % of its time in collections, and 3 % once
 * settled. The floor is not charged for freeing its 50,000 contexts either, which flatters the floor.
 */
export async function settle(): Promise<void> {
  global.gc?.();
  global.gc?.();
  for (let i = 0; i < 3; i++) await turn();
  await new Promise((r) => setTimeout(r, 5));
  global.gc?.();
  global.gc?.();
  for (let i = 0; i < 3; i++) await turn();
}

/**
 * steal: the share of the machine's CPU time the hypervisor took during the run (cpuTicks); gcPauses: the
 * collections that ran during the run, their pauses in ms.
 */
export type Run = { rate: number; secs: number; cpuSecs: number; lat: Float64Array; p50: number; p99: number; acksPerMsg: number; batches: number; steal: number; gcPauses: number[] };

/** P50 and P99 of latencies. */
export function percentiles(lats: Float64Array[]): { p50: number; p99: number } {
  let n = 0;
  for (const l of lats) n += l.length;
  const all = new Float64Array(n);
  let o = 0;
  for (const l of lats) {
    all.set(l, o);
    o += l.length;
  }
  all.sort();
  return { p50: all[Math.floor(n * 0.5)], p99: all[Math.floor(n * 0.99)] };
}

export const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

/**
 * Where each reading of a run was queued for the backbone and when its record was handed over, in the
 * order they were queued: a terminating gateway's readings as its device side gives them up (on this
 * thread or from worker threads, later), found by device and message id; a relaying gateway's as each
 * record is handed over (it queues one message per record at once). `done` gets each reading's latency
 * as the backbone record carrying it is sealed.
 */
class Stamps {
  readonly lat: Float64Array;
  readonly handAt: Float64Array;
  private readonly pos: Float64Array;
  private readonly at: Float64Array;
  queued = 0;
  sealed = 0;
  /** Record index by device: byDevice[start[d] + (id - firstId[d])]. */
  private readonly start: Int32Array;
  private readonly byDevice: Int32Array;
  private readonly firstId: Int32Array;
  private readonly deviceOf = new Map<DeviceRef, number>();

  constructor(private readonly f: Bridge, private readonly r: Records) {
    const n = r.recs.length, nd = f.devices.length;
    this.lat = new Float64Array(n);
    this.handAt = new Float64Array(n);
    this.pos = new Float64Array(n);
    this.at = new Float64Array(n);
    this.start = new Int32Array(nd + 1);
    for (let i = 0; i < n; i++) this.start[r.dev[i] + 1]++;
    for (let d = 0; d < nd; d++) this.start[d + 1] += this.start[d];
    const fill = this.start.slice(0, nd);
    this.byDevice = new Int32Array(n);
    this.firstId = new Int32Array(nd);
    for (let i = 0; i < n; i++) {
      const d = r.dev[i];
      if (fill[d] === this.start[d]) this.firstId[d] = r.ids[i];
      this.byDevice[fill[d]++] = i;
    }
  }

  /** The record a reading came from (-1: not one of this run's). */
  recordOf(d: DeviceRef, id: number): number {
    let k = this.deviceOf.get(d);
    if (k === undefined) this.deviceOf.set(d, (k = indexOfName(this.f.devices).get(d.name) ?? -1));
    if (k < 0) return -1;
    const j = this.start[k] + id - this.firstId[k];
    if (j < this.start[k] || j >= this.start[k + 1]) return -1;
    const i = this.byDevice[j];
    return this.r.ids[i] === id ? i : -1;
  }

  /** Reading of record i queued as message number `pos`. */
  queue(i: number, pos: number): void {
    const q = this.queued++;
    this.pos[q] = pos;
    this.at[q] = this.handAt[i];
    if (pos < this.f.gw.client.peer.out.sentHigh) this.done(performance.now()); // sealed in the same call
  }

  /** The backbone records sealed so far, at time t. */
  done(t: number): void {
    const high = this.f.gw.client.peer.out.sentHigh;
    for (; this.sealed < this.queued && this.pos[this.sealed] < high; this.sealed++) this.lat[this.sealed] = t - this.at[this.sealed];
  }
}

const names = new WeakMap<Device[], Map<string, number>>();
function indexOfName(devices: Device[]): Map<string, number> {
  let m = names.get(devices);
  if (m === undefined) names.set(devices, (m = new Map(devices.map((d, i) => [Buffer.from(d.kid).toString("hex"), i]))));
  return m;
}

/** Hands records [from, to) to the gateway at time t; returns the packets that made for the devices (ACKs). */
function burst(f: Bridge, r: Records, from: number, to: number, t: number, s: Stamps): number {
  const q = f.gw.client.peer.out;
  for (let i = from; i < to; i++) {
    s.handAt[i] = t;
    const end = q.end;
    f.gw.input(f.devices[r.dev[i]].link, r.recs[i]);
    if (f.gw.devices === undefined && q.end > end) s.queue(i, q.end - 1);
  }
  return f.gw.takeOutput().length; // the link adapters' part: packets back to the devices
}

/**
 * One run over `r`: bursts of BURST per turn as fast as they go (pacedRate 0), or `pacedRate` msg/s offered
 * in bursts on a 1 ms timer. Latency: from a record's input (its burst's hand-over) to the sealing of the
 * backbone record that carries its reading. The device side may be on worker threads (threadedFleet).
 */
export async function run(f: Bridge, r: Records, pacedRate: number): Promise<Run> {
  const { conn, ack } = f;
  const n = r.recs.length;
  const s = new Stamps(f, r);
  const dg = f.gw.devices;
  const sink = dg?.onUplink;
  if (dg !== undefined && sink !== undefined) {
    const q = f.gw.client.peer.out;
    dg.onUplink = (d, id, body, off, len, at) => {
      if (!sink(d, id, body, off, len, at)) return false;
      const i = s.recordOf(d, id);
      if (i >= 0) s.queue(i, q.end - 1);
      return true;
    };
  }
  const batchesBase = conn.records;
  conn.onSealed = () => s.done(performance.now());
  let acks = 0;
  let next = 0;
  const ticks = cpuTicks();
  const gcs = countCollections();
  const cpu = cpuSeconds();
  const start = performance.now();
  try {
    if (pacedRate === 0) {
      while (next < n) {
        const to = Math.min(n, next + BURST);
        acks += burst(f, r, next, to, performance.now(), s);
        next = to;
        ack();
        await turn();
      }
    } else {
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const t = performance.now();
          const due = Math.min(n, Math.floor(((t - start) * pacedRate) / 1000));
          if (due > next) {
            acks += burst(f, r, next, due, t, s);
            next = due;
          }
          ack();
          if (next >= n) {
            clearInterval(timer);
            resolve();
          }
        }, 1);
      });
    }
    // Worker threads give their readings up a turn or more later; one thread's are all queued by now.
    const until = performance.now() + 10_000;
    while (s.sealed < n && performance.now() < until) {
      await turn();
      acks += f.gw.takeOutput().length;
      ack();
    }
  } finally {
    conn.onSealed = undefined;
    if (dg !== undefined) dg.onUplink = sink;
  }
  const secs = (performance.now() - start) / 1000;
  const cpuSecs = cpuSeconds() - cpu;
  const gcPauses = gcs.stop().pauses;
  if (s.sealed !== n) throw new Error(`bridge bench: ${n - s.sealed} of ${n} readings did not come out (${f.gw.devices ? "terminate" : "relay"}: ${JSON.stringify(f.gw.stats)})`);
  return { rate: n / secs, secs, cpuSecs, lat: s.lat, ...percentiles([s.lat]), acksPerMsg: acks / n, batches: conn.records - batchesBase, steal: stealShare(ticks, cpuTicks()), gcPauses };
}

/**
 * The floor: one raw node:crypto AES-128-CCM-8 open per record (records.ts's rawOpen), on the same records,
 * each with its device's key and its nonce at hand. Wall and CPU seconds.
 */
export function floor(devices: Device[], r: Records): { secs: number; cpuSecs: number } {
  const nonces = r.recs.map((rec, i) => {
    const n = Buffer.from(devices[r.dev[i]].keys.iv);
    n.writeUInt32BE((n.readUInt32BE(9) ^ (rec.readUInt32BE(4) & 0xfffff)) >>> 0, 9);
    return n;
  });
  const cpu = cpuSeconds();
  const start = performance.now();
  for (let i = 0; i < r.recs.length; i++) {
    const rec = r.recs[i];
    const len = rec.length - 16;
    rawOpen("aes-128-ccm", devices[r.dev[i]].keys.key, nonces[i], 8, rec.subarray(0, 8), rec.subarray(8, 8 + len), rec.subarray(8 + len));
  }
  return { secs: (performance.now() - start) / 1000, cpuSecs: cpuSeconds() - cpu };
}

/**
 * The device side alone: DeviceGateway.input per record, each reading confirmed as it is taken in (as if
 * the controller had it durably already) and the ACK records taken after each. Wall and CPU seconds.
 */
export function deviceSide(f: Bridge, r: Records, order?: Int32Array): { secs: number; cpuSecs: number } {
  const d = f.gw.devices as DeviceGateway;
  const sink = d.onUplink;
  const now = Date.now();
  d.onUplink = (dev, id) => d.confirmOf(dev, id, now) || true;
  const before = d.stats.uplinks;
  const cpu = cpuSeconds();
  const start = performance.now();
  try {
    for (let k = 0; k < r.recs.length; k++) {
      const i = order === undefined ? k : order[k];
      d.input(f.devices[r.dev[i]].link, r.recs[i], now);
      d.takeOutput();
    }
  } finally {
    d.onUplink = sink;
  }
  const secs = (performance.now() - start) / 1000;
  if (d.stats.uplinks - before !== r.recs.length) throw new Error(`bridge bench: device side refused records: ${JSON.stringify(d.stats)}`);
  return { secs, cpuSecs: cpuSeconds() - cpu };
}

/**
 * Records through a gateway whose device side may answer later (worker threads): bursts of BURST per turn
 * while at most `window` are in flight, until every reading is sealed into a backbone record. Wall and
 * CPU seconds (CPU: this process, every thread).
 */
export async function runThrough(f: Bridge, r: Records, window = 8 * BURST): Promise<{ secs: number; cpuSecs: number }> {
  const peer = f.gw.client.peer;
  const n = r.recs.length;
  const base = peer.stats.sent;
  let next = 0;
  const cpu = cpuSeconds();
  const start = performance.now();
  for (let guard = 0; peer.stats.sent - base < n; guard++) {
    if (guard > 10_000_000) throw new Error("bridge bench: records did not come out");
    if (next < n && next - (peer.stats.sent - base) < window) {
      const to = Math.min(n, next + BURST);
      for (let i = next; i < to; i++) f.gw.input(f.devices[r.dev[i]].link, r.recs[i]);
      next = to;
    }
    f.gw.takeOutput();
    f.ack();
    await turn();
  }
  return { secs: (performance.now() - start) / 1000, cpuSecs: cpuSeconds() - cpu };
}
