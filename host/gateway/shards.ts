// The device side over worker threads (`sesame gateway --device-threads N`): each worker runs a DeviceGateway
// (./shard-worker.ts) for the sessions whose SPIs it owns, spi % N, so the device table is shared out by SPI
// and a record's worker is read off its first three bytes. Handshake messages carry no SPI: a BLE
// connection's go to one worker by its address, LoRa's first messages in turn; the worker that answers
// draws the new session's SPI from its own class. This thread keeps the links, the backbone and the
// acknowledgements: readings come back from the workers in batches and are written into the backbone queue
// as on one thread, and the controller's acknowledgements go back as confirmations, which release the ACKs.
// Each worker hands its sessions to the controller as one thread does (./session-handoff.ts): its reports and
// fetches go out through this thread, and an answer goes to the worker its SPI names, which is the worker
// that holds (or asked for) the session on that SPI.
//
// Messages between the threads are batched per turn of the event loop, bytes packed into one transferred
// buffer per batch. A device is named to this thread once per worker (its slot there), so readings carry
// a slot, not a name. A device that moves to a session on another worker (a new handshake from another
// source) is taken up there with a fresh reading-id window; the controller filters any copy that gets past.
import { Worker } from "node:worker_threads";
import type { Handoff } from "../backbone/frame";
import type { CommandState } from "../backbone/session-event";
import { spiOf } from "../backbone/session-handoff";
import type { KeyLimits } from "../telemetry/metrics";
import type { DeviceObserver } from "./observer";
import type { CommandSink, DeviceQueues, DeviceRef, DeviceSide, DownPacket, LinkAddress, UplinkSink } from "./device-side";
import { addBusiest, LORA } from "./device-side";

// The worker runs TypeScript like this thread: through tsx's loader, registered in the worker first
// (a worker does not take up the loader this thread was started with).
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))})` +
  `.then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL("./shard-worker.ts", import.meta.url).href)}); });`;

/** A device as a worker named it: its slot there. */
type ShardRef = DeviceRef & { worker: number; slot: number };

/** Bytes, packed: item i is data[ends[i - 1], ends[i]). */
export type Packed = { data: Uint8Array; ends: Int32Array };

/** This thread to a worker. */
export type ToShard =
  | Batch
  | { t: "connected"; link: string; now: number }
  | { t: "poll"; now: number }
  | { t: "answer"; answer: Handoff; now: number }
  | { t: "command"; device: string; body: Uint8Array; now: number; id: number | undefined }
  | { t: "end"; device: string; now: number }
  | { t: "limits" }
  | { t: "queues" }
  | { t: "grant"; device: string; grant: string };

/** Readings by device slot and message id. */
export type SlotIds = { slots: Int32Array; ids: Int32Array };

/**
 * A turn's work for a worker, in the order it is done: readings the backbone could not take (released),
 * packets from the links, readings the controller acknowledged (confirmed). One message, so one answer.
 */
export type Batch = { t: "batch"; release: SlotIds | undefined; links: string[]; packets: Packed | undefined; confirm: SlotIds | undefined; now: number };

/** An observer call made in a worker, replayed here: [method, ...arguments]. */
export type ObserverCall = [keyof DeviceObserver, ...unknown[]];

/**
 * A worker to this thread, after each message it handled that made something. A part with nothing in it is
 * left out (undefined): most answers carry packets and readings only, and every part is cloned.
 */
export type FromShard = {
  links: string[];
  packets: Packed | undefined;
  /** Readings: device slot, message id, time taken in, the reading. */
  readings: { slots: Int32Array; ids: Int32Array; ats: Float64Array; bodies: Packed } | undefined;
  /** Devices named for the first time: slot, name. */
  named: [number, string][] | undefined;
  calls: ObserverCall[] | undefined;
  evolved: { device: string; text: string }[] | undefined;
  /** Sessions ready, counted at each poll (counting walks every device of the worker). */
  online: number | undefined;
  /** What became of commands: device, message id, state. */
  commands: [string, number, CommandState][] | undefined;
  /** The worker's session handoff to the controller (SESSION_STATE, SESSION_FETCH), to send as they are. */
  controller: Handoff[] | undefined;
  /** Session answers the worker's handoff could make nothing of. */
  problems: string[] | undefined;
  /** The worker's key limits, when asked for ({ t: "limits" }). */
  limits: KeyLimits | undefined;
  /** The worker's device queues, when asked for ({ t: "queues" }). */
  queues: DeviceQueues | undefined;
};

/** Appends bytes to a growing buffer, and their ends: the writing half of Packed. */
export class Packer {
  private data = new Uint8Array(4096);
  private ends: number[] = [];
  private at = 0;

  get count(): number { return this.ends.length; }

  push(b: Uint8Array, off = 0, len = b.length - off): void {
    if (this.at + len > this.data.length) {
      const bigger = new Uint8Array(Math.max(2 * this.data.length, this.at + len));
      bigger.set(this.data.subarray(0, this.at));
      this.data = bigger;
    }
    for (let i = 0; i < len; i++) this.data[this.at + i] = b[off + i];
    this.at += len;
    this.ends.push(this.at);
  }

  /** What was packed (its own buffer, to transfer), and a fresh start; undefined when nothing was. */
  takeAny(): Packed | undefined {
    return this.ends.length === 0 ? undefined : this.take();
  }

  /** What was packed (its own buffer, to transfer), and a fresh start. */
  take(): Packed {
    const p = { data: this.data.slice(0, this.at), ends: Int32Array.from(this.ends) };
    this.at = 0;
    this.ends = [];
    return p;
  }
}

type Pending = { links: string[]; packets: Packer; confirmSlots: number[]; confirmIds: number[]; releaseSlots: number[]; releaseIds: number[] };

export class DeviceShards implements DeviceSide {
  onUplink: UplinkSink | undefined;
  onCommand: CommandSink | undefined;
  onOutput: (() => void) | undefined;
  /** The workers' messages for the controller (their sessions' handoff). */
  onController: ((m: Handoff) => void) | undefined;
  /** A session answer a worker ignored, and why. */
  onProblem: ((problem: string) => void) | undefined;
  private readonly limits: KeyLimits[] = [];
  private readonly queued: DeviceQueues[] = [];
  private readonly workers: Worker[] = [];
  private readonly pending: Pending[] = [];
  /** Per worker, the devices it named, by slot. */
  private readonly refs: ShardRef[][] = [];
  /** The worker of each device's latest session (for its commands). */
  private readonly homes = new Map<string, number>();
  private readonly online: number[] = [];
  private out: DownPacket[] = [];
  private evolved: { device: string; text: string }[] = [];
  private scheduled = false;
  private nextLora = 0;
  private now = 0;

  constructor(readonly count: number, private readonly observer?: DeviceObserver) {
    for (let k = 0; k < count; k++) {
      const w = new Worker(WORKER_BOOT, { eval: true, workerData: { index: k, count } });
      w.on("message", (m: FromShard) => this.fromShard(k, m));
      w.on("error", (e) => { throw e; });
      w.unref();
      this.workers.push(w);
      this.pending.push({ links: [], packets: new Packer(), confirmSlots: [], confirmIds: [], releaseSlots: [], releaseIds: [] });
      this.refs.push([]);
      this.online.push(0);
      this.limits.push({ records: 0, forgeries: 0 });
      this.queued.push({ commands: 0, readings: 0, busiest: [] });
    }
  }

  /** The worker of a packet: a record's by its SPI, a handshake message's by its source. */
  private workerOf(link: LinkAddress, packet: Uint8Array): number {
    if (packet.length >= 4 && (packet[0] | packet[1] | packet[2]) !== 0) return ((packet[0] << 16) | (packet[1] << 8) | packet[2]) % this.count;
    if (link === LORA) return this.nextLora++ % this.count;
    return hashOf(link) % this.count;
  }

  input(link: LinkAddress, packet: Uint8Array, now: number): void {
    const p = this.pending[this.workerOf(link, packet)];
    p.links.push(link);
    p.packets.push(packet);
    this.now = now;
    this.schedule();
  }

  connected(link: LinkAddress, now: number): void {
    this.workers[hashOf(link) % this.count].postMessage({ t: "connected", link, now } satisfies ToShard);
  }

  poll(now: number): void {
    for (const w of this.workers) w.postMessage({ t: "poll", now } satisfies ToShard);
  }

  get hasOutput(): boolean {
    return this.out.length > 0;
  }

  takeOutput(): DownPacket[] {
    const o = this.out;
    if (o.length === 0) return [];
    this.out = [];
    return o;
  }

  confirmOf(d: DeviceRef, id: number, now: number): boolean {
    const r = d as ShardRef;
    const p = this.pending[r.worker];
    p.confirmSlots.push(r.slot);
    p.confirmIds.push(id);
    this.now = now;
    this.schedule();
    return true;
  }

  command(device: string, body: Uint8Array, now: number, id?: number): void {
    const k = this.homes.get(device);
    if (k === undefined) return this.onCommand?.(device, id ?? 0, "refused");
    this.workers[k].postMessage({ t: "command", device, body, now, id } satisfies ToShard);
  }

  end(device: string, now: number): void {
    for (const w of this.workers) w.postMessage({ t: "end", device, now } satisfies ToShard);
  }

  onlineCount(): number {
    let n = 0;
    for (const x of this.online) n += x;
    return n;
  }

  /**
   * The workers' key limits as they last answered, and a request for fresh ones: a scrape sees what the
   * workers had at the scrape before (walking every session of a worker on each batch would cost more).
   */
  keyLimits(): KeyLimits {
    let records = 0, forgeries = 0;
    for (const l of this.limits) {
      records = Math.max(records, l.records);
      forgeries = Math.max(forgeries, l.forgeries);
    }
    for (const w of this.workers) w.postMessage({ t: "limits" } satisfies ToShard);
    return { records, forgeries };
  }

  /** The workers' queues as they last answered, and a request for fresh ones (as keyLimits). */
  queues(): DeviceQueues {
    const all: DeviceQueues = { commands: 0, readings: 0, busiest: [] };
    for (const q of this.queued) {
      all.commands += q.commands;
      all.readings += q.readings;
      for (const b of q.busiest) addBusiest(all.busiest, b);
    }
    for (const w of this.workers) w.postMessage({ t: "queues" } satisfies ToShard);
    return all;
  }

  /**
   * SESSION_ANSWER from the controller, for the worker whose sessions have its SPI (a fetch was asked by that
   * worker too: a record's worker is its SPI's). Returns a problem, or "".
   */
  answer(m: Handoff, now: number): string {
    const spi = spiOf(m.device);
    if (spi < 0) return "a session answer without an SPI";
    this.workers[spi % this.count].postMessage({ t: "answer", answer: m, now } satisfies ToShard);
    return "";
  }

  /** A KEYS grant, for every worker's key table. */
  grant(device: string, grant: string): void {
    for (const w of this.workers) w.postMessage({ t: "grant", device, grant } satisfies ToShard);
  }

  takeEvolved(): { device: string; text: string }[] {
    const e = this.evolved;
    this.evolved = [];
    return e;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** Each worker's batch of this turn (releases, packets, confirmations) as one message. */
  private readonly flush = (): void => {
    this.scheduled = false;
    for (let k = 0; k < this.count; k++) {
      const p = this.pending[k];
      if (p.releaseSlots.length === 0 && p.links.length === 0 && p.confirmSlots.length === 0) continue;
      const packets = p.packets.takeAny();
      const b: Batch = { t: "batch", release: slotIds(p.releaseSlots, p.releaseIds), links: p.links, packets, confirm: slotIds(p.confirmSlots, p.confirmIds), now: this.now };
      this.workers[k].postMessage(b satisfies ToShard, packets === undefined ? [] : [packets.data.buffer as ArrayBuffer]);
      p.links = [];
      p.releaseSlots = [];
      p.releaseIds = [];
      p.confirmSlots = [];
      p.confirmIds = [];
    }
  };

  private fromShard(k: number, m: FromShard): void {
    const refs = this.refs[k];
    if (m.named !== undefined) {
      for (const [slot, name] of m.named) {
        refs[slot] = { name, id: Uint8Array.from(Buffer.from(name, "hex")), worker: k, slot };
        this.homes.set(name, k);
      }
    }
    if (m.online !== undefined) this.online[k] = m.online;
    if (m.limits !== undefined) this.limits[k] = m.limits;
    if (m.queues !== undefined) this.queued[k] = m.queues;
    if (m.commands !== undefined) for (const [device, id, state] of m.commands) this.onCommand?.(device, id, state);
    if (m.controller !== undefined) for (const h of m.controller) this.onController?.(h);
    if (m.problems !== undefined) for (const p of m.problems) this.onProblem?.(p);
    if (m.evolved !== undefined) for (const e of m.evolved) this.evolved.push(e);
    const o = this.observer;
    if (o !== undefined && m.calls !== undefined) for (const [method, ...args] of m.calls) (o[method] as (...a: unknown[]) => void)(...args);
    const r = m.readings;
    if (r !== undefined && this.onUplink !== undefined) {
      const p = this.pending[k];
      for (let i = 0; i < r.ids.length; i++) {
        const from = i === 0 ? 0 : r.bodies.ends[i - 1];
        if (this.onUplink(refs[r.slots[i]], r.ids[i], r.bodies.data, from, r.bodies.ends[i] - from, r.ats[i])) continue;
        p.releaseSlots.push(r.slots[i]);
        p.releaseIds.push(r.ids[i]);
        this.schedule();
      }
    }
    const packets = m.packets;
    if (packets !== undefined) {
      for (let i = 0; i < m.links.length; i++) {
        const from = i === 0 ? 0 : packets.ends[i - 1];
        this.out.push({ link: m.links[i], bytes: packets.data.subarray(from, packets.ends[i]) });
      }
    }
    if (this.out.length > 0) this.onOutput?.();
  }
}

function slotIds(slots: number[], ids: number[]): SlotIds | undefined {
  return slots.length === 0 ? undefined : { slots: Int32Array.from(slots), ids: Int32Array.from(ids) };
}

/** A link address's worker, the same every time. */
function hashOf(link: string): number {
  let h = 0;
  for (let i = 0; i < link.length; i++) h = (Math.imul(h, 31) + link.charCodeAt(i)) >>> 0;
  return h;
}
