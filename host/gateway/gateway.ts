// The gateway process: device links in, the backbone to the controller out, in one of two modes.
//
//   terminate  The gateway ends device sessions (host/gateway/devices.ts) with keys the controller grants it
//              over the backbone (KEYS), and carries readings up as UPLINK and commands down as DOWNLINK.
//   relay      The gateway holds no device keys: each device packet goes up still sealed (RELAY_UP, tagged
//              with the link it came on) and the controller's answers come back down (RELAY_DOWN) to that
//              link. A captured relay gateway reveals no device data.
//
// Device sessions do not depend on the backbone: when the controller goes away the gateway reconnects on its
// own (host/backbone/link.ts) while devices keep their sessions; messages wait in a bounded queue, and what
// does not fit is dropped and counted rather than grown without limit.
import { EventEmitter } from "node:events";
import type { KeyPair } from "../../firmware/crypto/provider";
import { memoryStorage } from "../../firmware/runtime/facade";
import type { SaPolicy } from "../../firmware/session/sa";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import { BackboneClient } from "../backbone/link";
import type { GatewayIdentity } from "../backbone/handshake";
import { KIND_DOWNLINK, KIND_KEYS, KIND_KEYS_EVOLVED, KIND_RELAY_DOWN, KIND_RELAY_UP, KIND_UPLINK, type AppMessage, type Message } from "../backbone/frame";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import type { Logger } from "../telemetry/log";
import { DeviceGateway, type DownPacket } from "./devices";
import { KeyTable } from "./keytable";

export type GatewayMode = "terminate" | "relay";
/** The KEYS grant that carries the responder's static key pair (dh devices pin its public key). */
export const RESPONDER_GRANT = "*responder*";
/** An UPLINK's payload: message id (3 bytes) | gateway receive time, ms since the epoch (6) | the reading. */
export const UPLINK_HEAD = 9;

export type GatewayOptions = {
  mode: GatewayMode;
  identity: GatewayIdentity;
  controller: { host: string; port: number; publicKey: Uint8Array };
  log: Logger;
  /** Backbone queue bound (messages); beyond it device messages are dropped and counted. */
  queueMessages?: number;
};

export type GatewayStats = { up: number; down: number; dropped: number; relayedUp: number; relayedDown: number; grants: number };

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");
const hexOf = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Names as bytes (device ids from hex, link addresses), made once each: they come with every message. */
class ByteNames {
  private readonly map = new Map<string, Buffer>();
  constructor(private readonly encoding: "hex" | "utf8", private readonly max = 1 << 16) {}
  get(name: string): Buffer {
    let b = this.map.get(name);
    if (b === undefined) {
      if (this.map.size >= this.max) this.map.clear(); // bounded: addresses are the senders' to choose
      b = Buffer.from(name, this.encoding);
      this.map.set(name, b);
    }
    return b;
  }
}

export class Gateway extends EventEmitter {
  readonly stats: GatewayStats = { up: 0, down: 0, dropped: 0, relayedUp: 0, relayedDown: 0, grants: 0 };
  readonly keys = new KeyTable();
  readonly devices: DeviceGateway | undefined;
  readonly client: BackboneClient;
  private responder: KeyPair = nodeKeyPair(); // replaced by the controller's grant; until then dh handshakes fail
  private readonly out: DownPacket[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly deviceIds = new ByteNames("hex");
  private readonly linkNames = new ByteNames("utf8");

  constructor(private readonly opts: GatewayOptions) {
    super();
    if (opts.mode === "terminate") {
      const policy: SaPolicy = {
        suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000,
        seqBlock: 1024, store: memoryStorage(),
      };
      this.devices = new DeviceGateway({ config: (mode) => this.keys.responders(this.responder, policy)(mode), storage: memoryStorage() });
    }
    this.client = new BackboneClient({
      host: opts.controller.host, port: opts.controller.port, identity: opts.identity, controllerKey: opts.controller.publicKey,
      queue: { maxMessages: opts.queueMessages ?? 100_000, maxBytes: 64 << 20 },
    });
    this.client.on("message", (m: Message) => this.fromController(m));
    this.client.on("connected", () => opts.log.info("backbone up", { controller: `${opts.controller.host}:${opts.controller.port}` }));
    this.client.on("disconnected", (reason: string) => opts.log.warn("backbone down, reconnecting", { reason }));
  }

  start(): void {
    this.client.start();
    this.timer = setInterval(() => this.tick(), 50);
  }

  /** A whole packet from a device link ("ble:<address>" or "lora"). Never throws on bad input. */
  input(link: string, packet: Uint8Array): void {
    if (this.devices) {
      this.devices.input(link, packet, Date.now());
      this.pump();
    } else {
      this.toController({ kind: KIND_RELAY_UP, source: this.linkNames.get(link), spdu: packet });
      this.stats.relayedUp++;
    }
  }

  connected(link: string): void {
    if (this.devices) {
      this.devices.connected(link, Date.now());
      this.pump();
    }
  }

  /** Packets for the device links; the link adapters take them. */
  takeOutput(): DownPacket[] {
    return this.out.splice(0);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.client.close();
  }

  private tick(): void {
    if (this.devices) {
      this.devices.poll(Date.now());
      this.pump();
      for (const e of this.keys.takeEvolved()) this.toController({ kind: KIND_KEYS_EVOLVED, device: Buffer.from(e.device), payload: Buffer.from(e.text) });
    }
    if (this.out.length > 0) this.emit("output");
  }

  private pump(): void {
    const d = this.devices!;
    for (const u of d.takeUplinks()) {
      // The message id travels with the reading, so the controller can publish it and filter copies, and so
      // does the time the gateway took it in (ms), for the controller's latency figures.
      const payload = Buffer.allocUnsafe(UPLINK_HEAD + u.body.length);
      payload.writeUIntBE(u.id, 0, 3);
      payload.writeUIntBE(u.at, 3, 6);
      payload.set(u.body, UPLINK_HEAD);
      if (this.toController({ kind: KIND_UPLINK, device: this.deviceIds.get(u.device), payload })) this.stats.up++;
    }
    for (const o of d.takeOutput()) this.out.push(o);
    if (this.out.length > 0) this.emit("output");
  }

  private toController(m: AppMessage): boolean {
    if (this.client.send(m)) return true;
    this.stats.dropped++;
    return false;
  }

  private fromController(m: Message): void {
    if (m.kind === KIND_RELAY_DOWN && !this.devices) {
      this.out.push({ link: text(m.source), bytes: Uint8Array.from(m.spdu) });
      this.stats.relayedDown++;
      this.emit("output");
    } else if (m.kind === KIND_DOWNLINK && this.devices) {
      this.stats.down++;
      this.devices.command(hexOf(m.device), Uint8Array.from(m.payload), Date.now());
      this.pump();
    } else if (m.kind === KIND_KEYS && this.devices) {
      const device = text(m.device), grant = text(m.payload);
      this.stats.grants++;
      if (device === RESPONDER_GRANT) {
        const f = /^public=([0-9a-f]{64});secret=([0-9a-f]{64})$/.exec(grant);
        if (f) this.responder = { S: Uint8Array.from(Buffer.from(f[1], "hex")), s: Uint8Array.from(Buffer.from(f[2], "hex")) };
        return;
      }
      // Withdrawn (revoked, or rotated: the new keys follow): the device's live sessions end. A grant that
      // only carries evolved psk keys leaves them alone.
      if (grant === "") {
        const ended = this.devices.end(this.keys.peerOf(device), Date.now());
        if (ended > 0) this.opts.log.info("ended a device's sessions: its keys were withdrawn", { device, sessions: ended });
        this.pump();
      }
      const problem = this.keys.applyGrant(device, grant);
      if (problem) this.opts.log.warn("ignored a key grant", { device, problem });
    } else if (m.kind === KIND_KEYS && !this.devices) {
      // A relay gateway must never hold device keys: refuse, loudly.
      this.opts.log.error("refused device keys: this gateway relays", { device: text(m.device) });
    }
  }
}
