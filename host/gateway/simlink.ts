// The simulator's radios as a gateway link: the simulator process (host/sim/fleet.ts in real time) owns the
// modelled BLE and LoRa media, and hands the gateway process what its radios would: whole packets from a
// BLE connection or the LoRa channel, and connection events. One TCP connection, frames both ways:
//
//   frame = length (4, big-endian, of what follows) | type (1) | link length (1) | link (ASCII) | bytes
//   type  1 PACKET (sim -> gateway)   2 CONNECTED   3 DISCONNECTED   4 PACKET (gateway -> sim)
//         5 CHALLENGE (gateway -> sim)   6 RESPONSE (sim -> gateway)   7 WELCOME (gateway -> sim)
//         8 PACKET_SIGNAL (sim -> gateway): bytes = signal (2: RSSI and SNR, ./radio-signal.ts) | packet,
//           a packet with what the gateway's radio measured of it (type 1 is one it measured nothing of)
//
// A link is "ble:<board>" or "lora". Malformed frames close the connection (the simulator reconnects).
//
// Both ends hold a 32-byte shared secret (the gateway's --sim-secret-file) and prove it before anything
// else crosses: the gateway opens with CHALLENGE = Ng (32 random bytes); the simulator answers RESPONSE =
// Ns (32 random bytes) | HMAC-SHA256(secret, "sesame sim link v1 simulator" | Ng | Ns); the gateway checks
// it (timingSafeEqual) and answers WELCOME = HMAC-SHA256(secret, "sesame sim link v1 gateway" | Ng | Ns),
// which the simulator checks before it sends a packet. Each side's fresh nonce makes every transcript new,
// so an answer recorded on one connection is worth nothing on another, in either direction.
// Before that the gateway reads exactly one RESPONSE frame (70 bytes), within a deadline; connections not
// yet authenticated are bounded per source and in all, a newer one taking the oldest one's place
// (host/net/admission.ts), so neither a stranger nor a flood can hold the port.
// Of authenticated simulators the newest replaces the one before: the link has no keepalive, so the old
// socket of a simulator that restarted or lost its network may look open for a long time, and refusing the
// newcomer (as trusted: it holds the secret) would lock out the one that is live.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import * as net from "node:net";
import { Admission, type AdmissionLimits } from "../net/admission";
import type { DownPacket } from "./devices";
import { readSignal, SIGNAL_SIZE, writeSignal, type RadioSignal } from "./radio-signal";

export const SIM_PACKET_UP = 1;
export const SIM_CONNECTED = 2;
export const SIM_DISCONNECTED = 3;
export const SIM_PACKET_DOWN = 4;
export const SIM_CHALLENGE = 5;
export const SIM_RESPONSE = 6;
export const SIM_WELCOME = 7;
export const SIM_PACKET_SIGNAL = 8;
const MAX_FRAME = 8192;
const NONCE = 32;
const MAC = 32;
/** RESPONSE as it must arrive: length 66, type 6, no link, Ns | MAC. */
const RESPONSE_HEAD = Buffer.from([0, 0, 0, 2 + NONCE + MAC, SIM_RESPONSE, 0]);
const RESPONSE_SIZE = RESPONSE_HEAD.length + NONCE + MAC;

/** 16 simulators authenticating at once, 4 from one address; each must answer within 2 s. */
export const SIM_ADMISSION: AdmissionLimits = { maxPending: 16, perSource: 4, silentMs: 2_000, knownSources: 16 };

function proof(secret: Uint8Array, who: "simulator" | "gateway", ng: Uint8Array, ns: Uint8Array): Buffer {
  return createHmac("sha256", secret).update(`sesame sim link v1 ${who}`).update(ng).update(ns).digest();
}

export function encodeSimFrame(type: number, link: string, bytes: Uint8Array = new Uint8Array(0)): Buffer {
  const l = Buffer.from(link, "ascii");
  const out = Buffer.alloc(4 + 2 + l.length + bytes.length);
  out.writeUInt32BE(2 + l.length + bytes.length, 0);
  out[4] = type;
  out[5] = l.length;
  l.copy(out, 6);
  out.set(bytes, 6 + l.length);
  return out;
}

/** Splits a byte stream into frames; calls `bad` (and stops) on a malformed one. */
export function simFrameReader(onFrame: (type: number, link: string, bytes: Uint8Array) => void, bad: (why: string) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  let broken = false;
  return (chunk) => {
    if (broken) return;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (len < 2 || len > MAX_FRAME) {
        broken = true;
        return bad(`frame length ${len}`);
      }
      if (buf.length < 4 + len) break;
      const type = buf[4], ll = buf[5];
      if (ll > len - 2 || type < SIM_PACKET_UP || type > SIM_PACKET_SIGNAL) {
        broken = true;
        return bad(`frame type ${type} / link length ${ll}`);
      }
      const link = buf.subarray(6, 6 + ll).toString("ascii");
      onFrame(type, link, Uint8Array.from(buf.subarray(6 + ll, 4 + len)));
      buf = buf.subarray(4 + len);
    }
  };
}

export type SimLinkHandlers = {
  packet: (link: string, bytes: Uint8Array, signal?: RadioSignal) => void;
  connected: (link: string) => void;
  disconnected: (link: string) => void;
};

/** Connections closed before they authenticated, by reason, and frames that made an authenticated one close. */
export type SimLinkDropped = { evicted: number; refused: number; silent: number; "bad-auth": number; malformed: number };

/** The gateway's end: one authenticated simulator at a time (a newer authenticated one replaces it). */
export class SimLinkServer {
  private socket: net.Socket | undefined;
  private server: net.Server | undefined;
  private readonly admission: Admission;
  private badAuth = 0;
  private malformed = 0;

  constructor(private readonly h: SimLinkHandlers, private readonly secret: Uint8Array, limits: Partial<AdmissionLimits> = {}) {
    if (secret.length < 16) throw new RangeError("the simulator link's secret must be at least 16 bytes");
    this.admission = new Admission({ ...SIM_ADMISSION, ...limits });
  }

  get dropped(): SimLinkDropped {
    const a = this.admission.stats;
    return { evicted: a.evicted, refused: a.refused, silent: a.silent, "bad-auth": this.badAuth, malformed: this.malformed };
  }

  listen(port: number, host = "127.0.0.1"): Promise<number> {
    const server = net.createServer((s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve((server.address() as net.AddressInfo).port));
    });
  }

  send(p: DownPacket): boolean {
    if (!this.socket) return false;
    this.socket.write(encodeSimFrame(SIM_PACKET_DOWN, p.link, p.bytes));
    return true;
  }

  get attached(): boolean {
    return this.socket !== undefined;
  }

  close(): Promise<void> {
    this.socket?.destroy();
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private accept(s: net.Socket): void {
    const ticket = this.admission.admit(s.remoteAddress, () => s.destroy());
    if (ticket === undefined) return void s.destroy();
    s.setNoDelay(true);
    s.on("error", () => {});
    s.on("close", () => {
      this.admission.settle(ticket, false);
      if (this.socket === s) this.socket = undefined;
    });
    const ng = randomBytes(NONCE);
    s.write(encodeSimFrame(SIM_CHALLENGE, "", ng));
    let got: Buffer = Buffer.alloc(0);
    const challenged = (chunk: Buffer) => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      const head = Math.min(got.length, RESPONSE_HEAD.length);
      if (!got.subarray(0, head).equals(RESPONSE_HEAD.subarray(0, head))) return this.refuse(s);
      if (got.length < RESPONSE_SIZE) return;
      s.off("data", challenged);
      const ns = got.subarray(RESPONSE_HEAD.length, RESPONSE_HEAD.length + NONCE);
      const mac = got.subarray(RESPONSE_HEAD.length + NONCE, RESPONSE_SIZE);
      if (!timingSafeEqual(mac, proof(this.secret, "simulator", ng, ns))) return this.refuse(s);
      this.admission.settle(ticket, true);
      s.write(encodeSimFrame(SIM_WELCOME, "", proof(this.secret, "gateway", ng, ns)));
      this.attach(s, got.subarray(RESPONSE_SIZE));
    };
    s.on("data", challenged);
  }

  private refuse(s: net.Socket): void {
    this.badAuth++;
    s.destroy();
  }

  /** The authenticated simulator: its frames from now on, `rest` being what came right after its RESPONSE. */
  private attach(s: net.Socket, rest: Buffer): void {
    this.socket?.destroy();
    this.socket = s;
    const read = simFrameReader((type, link, bytes) => {
      if (type === SIM_PACKET_UP) this.h.packet(link, bytes);
      else if (type === SIM_PACKET_SIGNAL && bytes.length >= SIGNAL_SIZE) this.h.packet(link, bytes.subarray(SIGNAL_SIZE), readSignal(bytes, 0));
      else if (type === SIM_CONNECTED) this.h.connected(link);
      else if (type === SIM_DISCONNECTED) this.h.disconnected(link);
    }, () => {
      this.malformed++;
      s.destroy();
    });
    s.on("data", read);
    if (rest.length > 0) read(rest);
  }
}

/** The simulator's end: what host/sim/fleet.ts drives instead of an in-process gateway. Reconnects by itself
 * (a gateway restart looks to the boards like a gateway that went quiet for a while). It sends nothing but
 * its RESPONSE until the gateway has proven it holds the secret too. */
export class SimLinkClient {
  private socket: net.Socket | undefined; // authenticated
  private attempt: net.Socket | undefined; // the latest connection, authenticated or not
  private readonly down: DownPacket[] = [];
  private closed = false;
  connects = 0;
  /** Gateways that failed to prove the secret. */
  refused = 0;

  constructor(private readonly host: string, private readonly port: number, private readonly secret: Uint8Array) {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const s = net.connect(this.port, this.host);
    this.attempt = s;
    s.setNoDelay(true);
    let expect: Buffer | undefined; // the WELCOME's MAC, once the RESPONSE is sent
    // A gateway that never challenges (or never welcomes) is left for a new attempt.
    const deadline = setTimeout(() => s.destroy(), 5_000).unref();
    s.on("data", simFrameReader((type, link, bytes) => {
      if (this.socket === s) {
        if (type === SIM_PACKET_DOWN) this.down.push({ link, bytes });
      } else if (type === SIM_CHALLENGE && expect === undefined && bytes.length === NONCE) {
        const ns = randomBytes(NONCE);
        s.write(encodeSimFrame(SIM_RESPONSE, "", Buffer.concat([ns, proof(this.secret, "simulator", bytes, ns)])));
        expect = proof(this.secret, "gateway", bytes, ns);
      } else if (type === SIM_WELCOME && expect !== undefined && bytes.length === MAC && timingSafeEqual(bytes, expect)) {
        clearTimeout(deadline);
        this.socket = s;
        this.connects++;
      } else {
        this.refused++;
        s.destroy();
      }
    }, () => s.destroy()));
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(deadline);
      if (this.socket === s) this.socket = undefined;
      setTimeout(() => this.connect(), 250);
    });
  }

  get attached(): boolean {
    return this.socket !== undefined;
  }

  input(link: string, packet: Uint8Array, _now?: number, signal?: RadioSignal): void {
    if (this.socket === undefined) return;
    if (signal === undefined) return void this.socket.write(encodeSimFrame(SIM_PACKET_UP, link, packet));
    const bytes = new Uint8Array(SIGNAL_SIZE + packet.length);
    writeSignal(bytes, 0, signal);
    bytes.set(packet, SIGNAL_SIZE);
    this.socket.write(encodeSimFrame(SIM_PACKET_SIGNAL, link, bytes));
  }

  connected(link: string): void {
    this.socket?.write(encodeSimFrame(SIM_CONNECTED, link));
  }

  disconnected(link: string): void {
    this.socket?.write(encodeSimFrame(SIM_DISCONNECTED, link));
  }

  poll(): void {}

  takeOutput(): DownPacket[] {
    return this.down.splice(0);
  }

  takeUplinks(): [] {
    return [];
  }

  close(): void {
    this.closed = true;
    this.attempt?.destroy();
  }
}
