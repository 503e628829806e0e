// The bridge bench's set-up (used by bridge.ts and scaling.ts, run by bridge-run.ts): N devices, each with a session made by
// a real dh handshake (order I, over BLE) through the real gateway (host/gateway/gateway.ts in terminate mode:
// DeviceGateway, host provider); each sends 20-byte readings as DATA messages in compact records (40 bytes on
// the air), sealed under its session's own keys with fresh sequence numbers and message ids; the records of
// all devices come interleaved. The gateway's backbone client is never started: its real BackbonePeer
// (numbered queue, batches) runs on the session of a real backbone handshake, over a connection that seals
// each batch into its extreme-format AES-256-GCM record and stops there (that record is what one writev
// would send); the controller is not on this core, and its HELLO and acknowledgements are played to the peer.
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
import { type AppMessage, KIND_ACK, KIND_HELLO, KIND_KEYS, KIND_SESSION_STATE, Message, RUN_SIZE } from "../../host/backbone/frame";
import { grantFor } from "../../host/backbone/session-handoff";
import { backboneKeyPair, controllerEndpointConfig, GatewayIdentity, gatewayEndpointConfig } from "../../host/backbone/handshake";
import { BackbonePeer } from "../../host/backbone/peer";
import { sealChunks } from "../../host/backbone/records";
import { hostProvider, nodeKeyPair } from "../../host/crypto/provider";
import { Gateway, GatewayMode, RESPONDER_GRANT } from "../../host/gateway/gateway";
import { HOST_CCM8, HostKeys, sealFast } from "../../host/record/fast";
import { silentLogger } from "../../host/telemetry/log";
import { progress } from "../lib/measure";

/** Records handed to the gateway per turn of the event loop at max rate. */
export const BURST = 256;
export const PAYLOAD = 20;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export const turn = () => new Promise<void>((r) => setImmediate(r));

export type Device = { link: string; kid: Uint8Array; keys: HostKeys; spi: number; seq: number; id: number };

export type Bridge = { gw: Gateway; devices: Device[]; conn: SealOnly; ack: () => void };

/**
 * A gateway in `mode`, its backbone client never started: its peer runs over a SealOnly connection. In
 * terminate mode the responder key is granted by the controller's KEYS message, as over the backbone.
 */
function gateway(mode: GatewayMode, responder: KeyPair, deviceThreads = 1, devices = 0): { gw: Gateway; conn: SealOnly; ack: () => void } {
  const ctlKeys = backboneKeyPair();
  const identity = { kid: randomBytes(4), keys: backboneKeyPair() };
  // fleet() opens every session in one synchronous run, so each one's SESSION_OPENED, and the SESSION_STATE
  // that hands it to the controller (its CONFIRM is its first authenticated record), wait in the backbone
  // queue until the first turn: room for them on top of the gateway's default 100,000 messages.
  const queueMessages = 100_000 + 2 * devices;
  const gw = new Gateway({ mode, identity, controller: { host: "127.0.0.1", port: 9, publicKey: ctlKeys.S }, log: silentLogger(), deviceThreads, queueMessages });
  const grant = Buffer.from(`public=${hex(responder.S)};secret=${hex(responder.s)}`);
  if (mode === "terminate") gw.client.emit("message", { kind: KIND_KEYS, device: Buffer.from(RESPONDER_GRANT), payload: grant });
  const b = backbone(gw.client.peer, identity, ctlKeys);
  const grants = controllerGrants(gw);
  return { gw, conn: b.conn, ack: () => (b.ack(), grants()) };
}

/**
 * The controller's part of the session handoff (host/controller/session-store.ts): every session the
 * gateway reports (SESSION_STATE, a block of sequence numbers ahead) is granted the top it asked for, with
 * the next acknowledgement. Without it a session stops sealing ACKs at the end of its first granted block
 * (the gateway then only piles them up), and a long bench would measure a gateway that no longer acknowledges.
 */
function controllerGrants(gw: Gateway): () => void {
  const due: Message[] = [];
  const send = gw.client.send.bind(gw.client);
  gw.client.send = (m: AppMessage) => {
    const grant = m.kind === KIND_SESSION_STATE ? grantFor(m) : undefined;
    if (grant !== undefined) due.push(grant);
    return send(m);
  };
  return () => {
    for (const m of due.splice(0)) gw.client.emit("message", m);
  };
}

export type Fleet = { terminate: Bridge; relay: Bridge; handshakeSecs: number };

/**
 * A terminating gateway with `n` devices whose sessions are open and confirmed (real dh handshakes through
 * it, order I over BLE, host provider), and a relaying gateway for the same devices (whose records it only
 * carries: in relay mode the controller holds the sessions).
 */
export function fleet(n: number): Fleet {
  const responder = nodeKeyPair();
  const t = gateway("terminate", responder, 1, n);
  const policy: SaPolicy = {
    suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 64,
    store: memoryStorage(), codec: undefined, compress: false,
  };
  const base = { responderFirst: false, p: hostProvider, sliceSteps: 0, retryMs: 30_000, pskI: undefined, pskR: undefined, pskStore: undefined, spiLive: () => false };
  const devices: Device[] = [];
  const start = performance.now();
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
    devices.push(sender(ep, link, kid));
    if (i % 100 === 0) {
      t.gw.devices!.poll(Date.now()); // as the gateway's timer does (its tables are swept a slice a poll)
      progress(`bridge: ${n} device handshakes`, i, n);
    }
  }
  const handshakeSecs = (performance.now() - start) / 1000;
  // As a second of the gateway's timer would: its tables swept once round.
  for (let k = 0; k < 20; k++) t.gw.devices!.poll(Date.now());
  progress("bridge", 1, 1);
  return { terminate: { ...t, devices }, relay: { ...gateway("relay", responder), devices }, handshakeSecs };
}

/** A device whose handshake confirmed, as the bench sends its readings: under its session's sending key. */
function sender(ep: Endpoint, link: string, kid: Uint8Array): Device {
  const s = ep.session as Session;
  if (!ep.confirmed || s === undefined) throw new Error(`bridge bench: device ${hex(kid)} did not get a session`);
  const keys: HostKeys = { suite: HOST_CCM8, format: FORMAT_COMPACT, key: Buffer.from(s.out.epoch.key), iv: Buffer.from(s.out.epoch.iv) };
  return { link, kid, keys, spi: s.out.spi, seq: s.out.seq.next + 64, id: 1 };
}

/**
 * A terminating gateway whose device side runs on `deviceThreads` worker threads (./shards.ts), with `n`
 * devices handshaken through it as fleet() does, a batch at a time (its answers come a turn or more later).
 * The device keys come as the controller's KEYS grants, which reach every worker.
 */
export async function threadedFleet(n: number, deviceThreads: number): Promise<Bridge> {
  const responder = nodeKeyPair();
  const t = gateway("terminate", responder, deviceThreads);
  const policy: SaPolicy = {
    suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 64,
    store: memoryStorage(), codec: undefined, compress: false,
  };
  const base = { responderFirst: false, p: hostProvider, sliceSteps: 0, retryMs: 30_000, pskI: undefined, pskR: undefined, pskStore: undefined, spiLive: () => false };
  const answers = new Map<string, Uint8Array[]>();
  const collect = () => { for (const o of t.gw.takeOutput()) answers.set(o.link, [...(answers.get(o.link) ?? []), o.bytes]); };
  const devices: Device[] = [];
  for (let from = 0; from < n; from += 200) {
    const batch: { ep: Endpoint; link: string; kid: Uint8Array }[] = [];
    for (let i = from; i < Math.min(n, from + 200); i++) {
      const me = nodeKeyPair();
      const kid = Uint8Array.of(0x10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
      t.gw.client.emit("message", { kind: KIND_KEYS, device: Buffer.from(hex(kid)), payload: Buffer.from(`mode=dh;kid=${hex(kid)};public=${hex(me.S)}`) });
      const ep = epNew({ ...base, initiator: true, dh: true, policy, dhR: undefined, dhI: { p: hostProvider, kid, me, peer: responder.S } });
      epStart(ep, Date.now());
      batch.push({ ep, link: `ble:${hex(kid)}`, kid });
    }
    for (let round = 0; round < 3 && !batch.every((d) => d.ep.confirmed); round++) {
      for (const d of batch) for (const o of epTakeOutput(d.ep)) t.gw.input(d.link, o.bytes);
      const until = performance.now() + 30_000;
      while (!batch.every((d) => d.ep.confirmed || answers.has(d.link)) && performance.now() < until) {
        await new Promise((r) => setTimeout(r, 1));
        collect();
      }
      for (const d of batch) {
        for (const b of answers.get(d.link) ?? []) epInput(d.ep, b, 1, Date.now());
        answers.delete(d.link);
      }
    }
    for (const d of batch) for (const o of epTakeOutput(d.ep)) t.gw.input(d.link, o.bytes); // the devices' CONFIRMs
    for (const d of batch) devices.push(sender(d.ep, d.link, d.kid));
    progress(`bridge: ${n} device handshakes, ${deviceThreads} threads`, from, n);
  }
  await turn();
  t.gw.takeOutput();
  return { ...t, devices };
}

/** Records: record i is from device dev[i] and carries the reading numbered ids[i] (that device's message id). */
export type Records = { dev: Int32Array; ids: Int32Array; recs: Buffer[] };

/** Records [from, to) of r. */
export const sliceRecords = (r: Records, from: number, to: number): Records => ({ dev: r.dev.subarray(from, to), ids: r.ids.subarray(from, to), recs: r.recs.slice(from, to) });

/** The next `count` records of the fleet, devices interleaved (each sends in order, ids and sequence numbers fresh). */
export function records(devices: Device[], count: number): Records {
  const dev = new Int32Array(count);
  const ids = new Int32Array(count);
  const recs: Buffer[] = new Array(count);
  const body = randomBytes(PAYLOAD);
  let d = 0;
  for (let i = 0; i < count; i++) {
    // A spread that is not round-robin: a prime stride over the fleet.
    d = (d + 7919) % devices.length;
    const x = devices[d];
    body.writeUInt32BE(i, 0);
    ids[i] = x.id;
    recs[i] = sealFast(x.keys, x.spi, 0, 0, x.seq++, encodeData(x.id++, body));
    dev[i] = d;
  }
  return { dev, ids, recs };
}

/**
 * The gateway's backbone connection for the bench: the session of a real backbone handshake; each batch
 * the peer hands it is sealed into its AES-256-GCM record, and that is where it stops (the record is what
 * one writev would send). The controller is not on this core: its HELLO and ACKs are played to the peer.
 */
export class SealOnly extends EventEmitter {
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
    for (let i = 0; i < parts.length; i++) this.bytes += parts[i].length;
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
