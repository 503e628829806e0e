// Bridged device messages on one core (`npm run bench bridge`): device records in, backbone records out,
// next to the physical floor, one raw node:crypto AES-128-CCM open per message, timed in the same run.
//
// Set-up: N devices, each with a session made by a real dh handshake (order I, over BLE) through the real
// gateway (host/gateway/gateway.ts in terminate mode: DeviceGateway, host provider); each sends 20-byte
// readings as DATA messages in compact records (40 bytes on the air), sealed under its session's own keys
// with fresh sequence numbers and message ids; the records of all devices come interleaved. Single
// process, single thread. The gateway's backbone client is never started: its real BackbonePeer (numbered
// queue, batch writer) runs on the session of a real backbone handshake, over a connection that seals each
// batch into its extreme-format AES-256-GCM record and stops there (that record is what one writev would
// send); the controller is not on this core, and its HELLO and acknowledgements are played to the peer.
//   - terminate: Gateway.input per record: SPI lookup, replay window, CCM open, dedup of message ids, the
//     ACK record back to the device, the reading as an UPLINK into the backbone batch.
//   - relay: Gateway.input per record: the record, still sealed, as a RELAY_UP into the batch.
// max: records handed over in bursts of BURST per turn of the event loop (as socket reads come), as fast as
// the gateway takes them. @50k: bursts on a 1 ms timer, real time. A message's latency runs from the
// moment its record is handed to the gateway to the sealing of the backbone record that carries it.
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { KeyPair } from "../../firmware/crypto/provider";
import { FLAG_BATCH, FORMAT_COMPACT } from "../../firmware/record/header";
import { memoryStorage } from "../../firmware/runtime/facade";
import { encodeData } from "../../firmware/runtime/messages";
import { Endpoint, epInput, epNew, epPoll, epStart, epTakeOutput } from "../../firmware/session/endpoint";
import { SaPolicy } from "../../firmware/session/sa";
import { Session } from "../../firmware/session/session";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import { BackboneConnection, CONN_OPEN, MAX_RECORD_PAYLOAD } from "../../host/backbone/connection";
import { KIND_ACK, KIND_HELLO, KIND_KEYS, Message, RUN_SIZE } from "../../host/backbone/frame";
import { backboneKeyPair, controllerEndpointConfig, GatewayIdentity, gatewayEndpointConfig } from "../../host/backbone/handshake";
import { BackbonePeer } from "../../host/backbone/peer";
import { sealChunks } from "../../host/backbone/records";
import { hostProvider, nodeKeyPair } from "../../host/crypto/provider";
import { Gateway, GatewayMode, RESPONDER_GRANT } from "../../host/gateway/gateway";
import { HOST_CCM8, HostKeys, sealFast } from "../../host/record/fast";
import { silentLogger } from "../../host/telemetry/log";
import { fmt, median, progress, table } from "../lib/measure";
import { rawOpen } from "./records";

const DEVICES = Number(process.env.SESAME_BRIDGE_DEVICES ?? 1000);
const ROUNDS = Number(process.env.SESAME_BENCH_ROUNDS ?? 5);
/** Slices per round (each measured on every path in turn). */
const SLICES = 4;
/** Records per throughput round. */
const PER_ROUND = Number(process.env.SESAME_BRIDGE_RECORDS ?? 200_000);
/** Records handed to the gateway per turn of the event loop at max rate. */
const BURST = 256;
const PAYLOAD = 20;
const PACED_RATE = 50_000;
const PACED_MS = 2000;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

type Device = { link: string; kid: Uint8Array; keys: HostKeys; spi: number; seq: number; id: number };

type Bridge = { gw: Gateway; devices: Device[]; conn: SealOnly; ack: () => void };

/**
 * A gateway in `mode`, its backbone client never started: its peer runs over a SealOnly connection. In
 * terminate mode the responder key is granted by the controller's KEYS message, as over the backbone.
 */
function gateway(mode: GatewayMode, responder: KeyPair): { gw: Gateway; conn: SealOnly; ack: () => void } {
  const ctlKeys = backboneKeyPair();
  const identity = { kid: randomBytes(4), keys: backboneKeyPair() };
  const gw = new Gateway({ mode, identity, controller: { host: "127.0.0.1", port: 9, publicKey: ctlKeys.S }, log: silentLogger() });
  const grant = Buffer.from(`public=${hex(responder.S)};secret=${hex(responder.s)}`);
  if (mode === "terminate") gw.client.emit("message", { kind: KIND_KEYS, device: Buffer.from(RESPONDER_GRANT), payload: grant });
  return { gw, ...backbone(gw.client.peer, identity, ctlKeys) };
}

/**
 * A terminating gateway with `n` devices whose sessions are open and confirmed (real dh handshakes through
 * it, order I over BLE, host provider), and a relaying gateway for the same devices (whose records it only
 * carries: in relay mode the controller holds the sessions).
 */
function fleet(n: number): { terminate: Bridge; relay: Bridge } {
  const responder = nodeKeyPair();
  const t = gateway("terminate", responder);
  const policy: SaPolicy = {
    suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 64,
    store: memoryStorage(), codec: undefined, compress: false,
  };
  const base = { responderFirst: false, p: hostProvider, sliceSteps: 0, retryMs: 30_000, pskI: undefined, pskR: undefined, pskStore: undefined, spiLive: () => false };
  const devices: Device[] = [];
  for (let i = 0; i < n; i++) {
    const me = nodeKeyPair();
    const kid = Uint8Array.of(0x10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    t.gw.keys.setDh(hex(kid), hex(kid), me.S);
    const ep: Endpoint = epNew({ ...base, initiator: true, dh: true, policy, dhR: undefined, dhI: { p: hostProvider, kid, me, peer: responder.S } });
    const link = `ble:${hex(kid)}`;
    epStart(ep, Date.now());
    for (let round = 0; round < 4 && !ep.confirmed; round++) {
      for (const o of epTakeOutput(ep)) t.gw.input(link, o.bytes);
      for (const o of t.gw.takeOutput()) if (o.link === link) epInput(ep, o.bytes, 1, Date.now());
      epPoll(ep, Date.now());
    }
    for (const o of epTakeOutput(ep)) t.gw.input(link, o.bytes); // the device's CONFIRM
    t.gw.takeOutput();
    const s = ep.session as Session;
    if (!ep.confirmed || s === undefined) throw new Error(`bridge bench: device ${i} did not get a session`);
    const keys: HostKeys = { suite: HOST_CCM8, format: FORMAT_COMPACT, key: Buffer.from(s.out.epoch.key), iv: Buffer.from(s.out.epoch.iv) };
    devices.push({ link, kid, keys, spi: s.out.spi, seq: s.out.seq.next + 64, id: 1 });
    if (i % 50 === 0) progress(`bridge: ${n} device handshakes`, i, n);
  }
  progress("bridge", 1, 1);
  return { terminate: { ...t, devices }, relay: { ...gateway("relay", responder), devices } };
}

/** The next `count` records of the fleet, devices interleaved (each sends in order, ids and sequence numbers fresh). */
function records(devices: Device[], count: number): { dev: Int32Array; recs: Buffer[] } {
  const dev = new Int32Array(count);
  const recs: Buffer[] = new Array(count);
  const body = randomBytes(PAYLOAD);
  let d = 0;
  for (let i = 0; i < count; i++) {
    // A spread that is not round-robin: a prime stride over the fleet.
    d = (d + 7919) % devices.length;
    const x = devices[d];
    body.writeUInt32BE(i, 0);
    recs[i] = sealFast(x.keys, x.spi, 0, 0, x.seq++, encodeData(x.id++, body));
    dev[i] = d;
  }
  return { dev, recs };
}

/**
 * The gateway's backbone connection for the bench: the session of a real backbone handshake; each batch
 * the peer hands it is sealed into its AES-256-GCM record, and that is where it stops (the record is what
 * one writev would send). The controller is not on this core: its HELLO and ACKs are played to the peer.
 */
class SealOnly extends EventEmitter {
  state = CONN_OPEN;
  writable = true;
  records = 0;
  bytes = 0;
  /** Called after each sealed batch (the peer's sent count already includes it). */
  onSealed: (() => void) | undefined;
  constructor(private readonly s: Session) {
    super();
  }
  corked<T>(fn: () => T): T {
    return fn();
  }
  sendBatch(chunks: readonly Uint8Array[]): boolean {
    const parts = sealChunks(this.s, chunks, FLAG_BATCH, Date.now(), MAX_RECORD_PAYLOAD);
    if (parts === undefined) throw new Error("bridge bench: batch not sealed");
    for (const p of parts) this.bytes += p.length;
    this.records++;
    this.onSealed?.();
    return true;
  }
  close(): void {}
}

function backbone(peer: BackbonePeer, identity: GatewayIdentity, ctlKeys: KeyPair): { conn: SealOnly; ack: () => void } {
  const gwEp = epNew(gatewayEndpointConfig(identity, ctlKeys.S));
  const ctlEp = epNew(controllerEndpointConfig(ctlKeys, (k) => (hex(k) === hex(identity.kid) ? identity.keys.S : undefined)));
  const now = Date.now();
  epStart(ctlEp, now);
  epStart(gwEp, now);
  for (let i = 0; i < 4; i++) {
    for (const o of epTakeOutput(ctlEp)) epInput(gwEp, o.bytes, 1, now);
    for (const o of epTakeOutput(gwEp)) epInput(ctlEp, o.bytes, 1, now);
  }
  if (!gwEp.confirmed || gwEp.session === undefined) throw new Error("bridge bench: no backbone session");
  const conn = new SealOnly(gwEp.session);
  peer.attach(conn as unknown as BackboneConnection);
  conn.emit("messages", [{ kind: KIND_HELLO, run: randomBytes(RUN_SIZE), next: 0, peerRun: peer.run, taken: 0 }] as Message[]);
  let acked = 0;
  const ack = () => {
    if (peer.out.sentHigh === acked) return;
    acked = peer.out.sentHigh;
    conn.emit("messages", [{ kind: KIND_ACK, taken: acked }] as Message[]);
  };
  return { conn, ack };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * Two full collections: the first moves the records just made out of the young generation's first half,
 * the second into the old generation, where the scavenges during a run no longer copy them. Otherwise the
 * bench's own input (a fresh array of a hundred thousand records) is what the run's pauses are made of.
 */
function settle(): void {
  global.gc?.();
  global.gc?.();
}

/** Hands records [from, to) to the gateway; returns how many messages that queued for the backbone. */
function burst(f: Bridge, dev: Int32Array, recs: Buffer[], from: number, to: number): { queued: number; acks: number } {
  const q = f.gw.client.peer.out;
  const before = q.end;
  for (let i = from; i < to; i++) f.gw.input(f.devices[dev[i]].link, recs[i]);
  const acks = f.gw.takeOutput().length; // the link adapters' part: packets back to the devices
  return { queued: q.end - before, acks };
}

type Run = { rate: number; secs: number; lat: Float64Array; p50: number; p99: number; acksPerMsg: number; batches: number };

/** P50 and P99 of latencies. */
function percentiles(lats: Float64Array[]): { p50: number; p99: number } {
  const all = Float64Array.from(lats.flatMap((l) => Array.from(l))).sort();
  return { p50: all[Math.floor(all.length * 0.5)], p99: all[Math.floor(all.length * 0.99)] };
}

/**
 * One run over `recs`: bursts of BURST per turn as fast as they go (pacedRate 0), or `pacedRate` msg/s
 * offered in bursts on a 1 ms timer. Latency: from a record's input to the sealing of its batch.
 */
async function run(f: Bridge, dev: Int32Array, recs: Buffer[], pacedRate: number): Promise<Run> {
  const { conn, ack } = f;
  const peer = f.gw.client.peer;
  const n = recs.length;
  // Backbone messages leave in the order they were queued: the k-th one sealed is the k-th one sent, whose
  // records arrived at arrived[k] (one time per burst: a burst is handed over at once).
  const arrived = new Float64Array(n);
  const lat = new Float64Array(n);
  let queued = 0;
  let sealed = 0;
  const sentBase = peer.stats.sent;
  const batchesBase = conn.records;
  conn.onSealed = () => {
    const t = performance.now();
    const upTo = Math.min(queued, peer.stats.sent - sentBase);
    for (; sealed < upTo; sealed++) lat[sealed] = t - arrived[sealed];
  };
  let acks = 0;
  const hand = (from: number, to: number) => {
    const t = performance.now();
    const b = burst(f, dev, recs, from, to);
    arrived.fill(t, queued, queued + b.queued);
    queued += b.queued;
    acks += b.acks;
  };
  let next = 0;
  const start = performance.now();
  if (pacedRate === 0) {
    while (next < n) {
      const to = Math.min(n, next + BURST);
      hand(next, to);
      next = to;
      ack();
      await turn();
    }
  } else {
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(n, Math.floor(((performance.now() - start) * pacedRate) / 1000));
        if (due > next) {
          hand(next, due);
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
  while (sealed < queued) {
    await turn();
    ack();
  }
  const secs = (performance.now() - start) / 1000;
  conn.onSealed = undefined;
  if (queued !== n) throw new Error(`bridge bench: ${n - queued} of ${n} records did not come out (${f.gw.devices ? "terminate" : "relay"}: ${JSON.stringify(f.gw.stats)})`);
  return {
    rate: n / secs, secs, lat, ...percentiles([lat]),
    acksPerMsg: acks / n, batches: conn.records - batchesBase,
  };
}

/**
 * The floor: one raw node:crypto AES-128-CCM-8 open per record (records.ts's rawOpen), on the same records,
 * each with its device's key and its nonce at hand.
 */
function floor(devices: Device[], dev: Int32Array, recs: Buffer[]): number {
  const nonces = recs.map((r, i) => {
    const n = Buffer.from(devices[dev[i]].keys.iv);
    n.writeUInt32BE((n.readUInt32BE(9) ^ (r.readUInt32BE(4) & 0xfffff)) >>> 0, 9);
    return n;
  });
  const start = performance.now();
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    const len = r.length - 16;
    rawOpen("aes-128-ccm", devices[dev[i]].keys.key, nonces[i], 8, r.subarray(0, 8), r.subarray(8, 8 + len), r.subarray(8 + len));
  }
  return recs.length / ((performance.now() - start) / 1000);
}

/**
 * The device side alone: DeviceGateway.input per record, its uplinks taken and confirmed at once (as if the
 * controller had them durably already) and the ACK records taken, after each.
 */
function deviceSide(f: Bridge, dev: Int32Array, recs: Buffer[]): number {
  const d = f.gw.devices!;
  const before = d.stats.uplinks;
  const start = performance.now();
  for (let i = 0; i < recs.length; i++) {
    const now = Date.now();
    d.input(f.devices[dev[i]].link, recs[i], now);
    for (const u of d.takeUplinks()) d.confirm(u.device, u.id, now);
    d.takeOutput();
  }
  const rate = recs.length / ((performance.now() - start) / 1000);
  if (d.stats.uplinks - before !== recs.length) throw new Error(`bridge bench: device side refused records: ${JSON.stringify(d.stats)}`);
  return rate;
}

export async function benchBridge(): Promise<string> {
  const f = fleet(DEVICES);
  const res: { [k: string]: number[] } = {};
  const put = (k: string, v: number) => (res[k] ??= []).push(v);
  const steps = ROUNDS + 2;
  // Warm-up (JIT), not counted.
  {
    const w = records(f.terminate.devices, 20_000);
    floor(f.terminate.devices, w.dev, w.recs);
    await run(f.terminate, w.dev, w.recs, 0);
    await run(f.relay, w.dev, w.recs, 0);
    const v = records(f.terminate.devices, 20_000);
    deviceSide(f.terminate, v.dev, v.recs);
  }
  // A round takes its records in SLICES slices, each measured on every path in turn, so that the noise of a
  // shared machine falls on all of them alike; a path's rate in the round is its records over its time.
  for (let r = 0; r < ROUNDS; r++) {
    progress(`bridge: round ${r + 1} of ${ROUNDS}`, r, steps);
    const n = Math.floor(PER_ROUND / SLICES);
    const secs = { floor: 0, terminate: 0, relay: 0, device: 0 };
    const tl: Float64Array[] = [], rl: Float64Array[] = [];
    let acks = 0, tBatches = 0, rBatches = 0;
    for (let k = 0; k < SLICES; k++) {
      const { dev, recs } = records(f.terminate.devices, n);
      const other = records(f.terminate.devices, n);
      settle();
      secs.floor += n / floor(f.terminate.devices, dev, recs);
      settle();
      const t = await run(f.terminate, dev, recs, 0);
      secs.terminate += t.secs;
      tl.push(t.lat);
      acks += t.acksPerMsg * n;
      tBatches += t.batches;
      settle();
      const x = await run(f.relay, dev, recs, 0); // relay opens nothing: the same records do
      secs.relay += x.secs;
      rl.push(x.lat);
      rBatches += x.batches;
      settle();
      secs.device += n / deviceSide(f.terminate, other.dev, other.recs);
    }
    for (const k of ["floor", "terminate", "relay", "device"] as const) put(k, (n * SLICES) / secs[k]);
    const tp = percentiles(tl), rp = percentiles(rl);
    put("tP50", tp.p50);
    put("tP99", tp.p99);
    put("rP50", rp.p50);
    put("rP99", rp.p99);
    put("acks", acks / (n * SLICES));
    put("tBatch", (n * SLICES) / tBatches);
    put("rBatch", (n * SLICES) / rBatches);
  }
  // Paced: PACED_RATE msg/s offered for PACED_MS, three runs per mode.
  const paced: { [m: string]: Run[] } = { terminate: [], relay: [] };
  for (const mode of ["terminate", "relay"] as const) {
    progress(`bridge: ${PACED_RATE} msg/s, ${mode}`, ROUNDS + (mode === "relay" ? 1 : 0), steps);
    for (let r = 0; r < 3; r++) {
      const { dev, recs } = records(f.terminate.devices, (PACED_RATE * PACED_MS) / 1000);
      settle();
      paced[mode].push(await run(f[mode], dev, recs, PACED_RATE));
    }
  }
  progress("bridge", steps, steps);
  const m = (k: string) => median(res[k]);
  const ms = (x: number) => x.toFixed(x < 10 ? 2 : 1);
  const pm = (mode: string, k: "p50" | "p99" | "rate") => median(paced[mode].map((x) => x[k]));
  const floorRate = m("floor");
  const ratio = (k: string) => median(res[k].map((v, i) => v / res.floor[i])); // per round: both measured together
  const pct = (x: number) => (x * 100).toFixed(0) + "%";
  const rows = [
    ["floor: raw CCM open per record", fmt(floorRate), "100%", "", "", "", ""],
    ["terminate (Gateway, to sealed backbone record)", fmt(m("terminate")), pct(ratio("terminate")), ms(m("tP50")), ms(m("tP99")), ms(pm("terminate", "p50")), ms(pm("terminate", "p99"))],
    ["  of which device side (DeviceGateway + ACKs)", fmt(m("device")), pct(ratio("device")), "", "", "", ""],
    ["relay (Gateway, to sealed backbone record)", fmt(m("relay")), pct(ratio("relay")), ms(m("rP50")), ms(m("rP99")), ms(pm("relay", "p50")), ms(pm("relay", "p99"))],
  ];
  return table(["path (20-byte readings, one core)", "msg/s", "of floor", "P50 ms max", "P99 ms max", `P50 ms @${PACED_RATE / 1000}k`, `P99 ms @${PACED_RATE / 1000}k`], rows) +
    `\n${DEVICES} devices with dh sessions (real handshakes), readings as DATA messages in 40-byte compact records, devices interleaved;` +
    ` medians of ${ROUNDS} rounds of ${PER_ROUND} records, the floor timed in each round on the same records, in ${SLICES} slices taken in turn` +
    ` with the other paths ("of floor": median of the per-round ratios).` +
    `\nmax = as fast as it goes, bursts of ${BURST} records per event-loop turn; @${PACED_RATE / 1000}k = ${PACED_RATE} msg/s offered in bursts on a 1 ms timer` +
    ` for ${PACED_MS / 1000} s, median of 3 (achieved ${fmt(pm("terminate", "rate"))} and ${fmt(pm("relay", "rate"))} msg/s). Latency: record handed to the gateway -> the backbone record carrying it sealed.` +
    `\nTerminate: ${m("acks").toFixed(2)} ACK records to the devices per reading; ${m("tBatch").toFixed(0)} readings per backbone record at max (relay: ${m("rBatch").toFixed(0)}).` +
    ` Backbone: the gateway's real BackbonePeer on a real backbone session; it stops at the sealed AES-256-GCM record (what one writev sends); the controller's acknowledgements are played to it.`;
}
