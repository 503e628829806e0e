// The simulator's radios as a gateway link: the simulator process (host/sim/fleet.ts in real time) owns the
// modelled BLE and LoRa media, and hands the gateway process what its radios would: whole packets from a
// BLE connection or the LoRa channel, and connection events. One TCP connection, frames both ways:
//
//   frame = length (4, big-endian, of what follows) | type (1) | link length (1) | link (ASCII) | bytes
//   type  1 PACKET (sim -> gateway)   2 CONNECTED   3 DISCONNECTED   4 PACKET (gateway -> sim)
//
// A link is "ble:<board>" or "lora". Malformed frames close the connection (the simulator reconnects).
import * as net from "node:net";
import type { DownPacket } from "./devices";

export const SIM_PACKET_UP = 1;
export const SIM_CONNECTED = 2;
export const SIM_DISCONNECTED = 3;
export const SIM_PACKET_DOWN = 4;
const MAX_FRAME = 8192;

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
      if (ll > len - 2 || type < SIM_PACKET_UP || type > SIM_PACKET_DOWN) {
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
  packet: (link: string, bytes: Uint8Array) => void;
  connected: (link: string) => void;
  disconnected: (link: string) => void;
};

/** The gateway's end: listens for one simulator at a time (a new one replaces the old). */
export class SimLinkServer {
  private socket: net.Socket | undefined;
  private server: net.Server | undefined;
  malformed = 0;

  constructor(private readonly h: SimLinkHandlers) {}

  listen(port: number, host = "127.0.0.1"): Promise<number> {
    const server = net.createServer((s) => {
      this.socket?.destroy();
      this.socket = s;
      s.setNoDelay(true);
      s.on("data", simFrameReader((type, link, bytes) => {
        if (type === SIM_PACKET_UP) this.h.packet(link, bytes);
        else if (type === SIM_CONNECTED) this.h.connected(link);
        else if (type === SIM_DISCONNECTED) this.h.disconnected(link);
      }, () => {
        this.malformed++;
        s.destroy();
      }));
      s.on("error", () => {});
      s.on("close", () => {
        if (this.socket === s) this.socket = undefined;
      });
    });
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
}

/** The simulator's end: what host/sim/fleet.ts drives instead of an in-process gateway. Reconnects by itself
 * (a gateway restart looks to the boards like a gateway that went quiet for a while). */
export class SimLinkClient {
  private socket: net.Socket | undefined;
  private readonly down: DownPacket[] = [];
  private closed = false;
  connects = 0;

  constructor(private readonly host: string, private readonly port: number) {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const s = net.connect(this.port, this.host);
    s.setNoDelay(true);
    s.on("connect", () => {
      this.socket = s;
      this.connects++;
    });
    s.on("data", simFrameReader((type, link, bytes) => {
      if (type === SIM_PACKET_DOWN) this.down.push({ link, bytes });
    }, () => s.destroy()));
    s.on("error", () => {});
    s.on("close", () => {
      if (this.socket === s) this.socket = undefined;
      setTimeout(() => this.connect(), 250);
    });
  }

  get attached(): boolean {
    return this.socket !== undefined;
  }

  input(link: string, packet: Uint8Array): void {
    this.socket?.write(encodeSimFrame(SIM_PACKET_UP, link, packet));
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
    this.socket?.destroy();
  }
}
