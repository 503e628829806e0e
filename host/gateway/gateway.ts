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
import { BackboneClient, type HostPort } from "../backbone/link";
import type { GatewayIdentity } from "../backbone/handshake";
import { KIND_DOWNLINK, KIND_KEYS, KIND_KEYS_EVOLVED, KIND_RELAY_DOWN, KIND_RELAY_UP, KIND_UPLINK, type AppMessage, type Message } from "../backbone/frame";
import { allSessionsClosed, commandEvent, sessionEvent, type CommandState } from "../backbone/session-event";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import { hostCodec } from "../record/gpcomp";
import type { Logger } from "../telemetry/log";
import { Metrics } from "../telemetry/metrics";
import { DeviceGateway, type DownPacket } from "./devices";
import { KeyTable } from "./keytable";
import { GatewayTelemetry, metricsObserver } from "./telemetry";

export type GatewayMode = "terminate" | "relay";
/** The KEYS grant that carries the responder's static key pair (dh devices pin its public key). */
export const RESPONDER_GRANT = "*responder*";
/** An UPLINK's payload: message id (3 bytes) | gateway receive time, ms since the epoch (6) | the reading. */
export const UPLINK_HEAD = 9;
/** A DOWNLINK's payload: the command's id, the controller's per-device number (3 bytes) | the command. */
export const COMMAND_HEAD = 3;

export type GatewayOptions = {
  mode: GatewayMode;
  identity: GatewayIdentity;
  /** The controller; `fallbacks`: more controllers of the same cluster (same key), tried in turn. */
  controller: { host: string; port: number; publicKey: Uint8Array; fallbacks?: HostPort[] };
  log: Logger;
  /** Backbone queue bound (messages); beyond it device messages are dropped and counted. */
  queueMessages?: number;
  /** Where the gateway's figures go (served at its /metrics by the CLI); a Metrics of its own when absent. */
  metrics?: Metrics;
};

export type GatewayStats = { up: number; down: number; upBytes: number; downBytes: number; dropped: number; relayedUp: number; relayedDown: number; grants: number };

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
  readonly stats: GatewayStats = { up: 0, down: 0, upBytes: 0, downBytes: 0, dropped: 0, relayedUp: 0, relayedDown: 0, grants: 0 };
  readonly keys = new KeyTable();
  readonly devices: DeviceGateway | undefined;
  readonly client: BackboneClient;
  private responder: KeyPair = nodeKeyPair(); // replaced by the controller's grant; until then dh handshakes fail
  private readonly out: DownPacket[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly deviceIds = new ByteNames("hex");
  private readonly linkNames = new ByteNames("utf8");
  /** Readings on the backbone waiting for the controller's acknowledgement: backbone number, device, id. */
  private readonly unconfirmed = new Unconfirmed();
  readonly metrics: Metrics;
  private readonly telemetry: GatewayTelemetry;

  constructor(private readonly opts: GatewayOptions) {
    super();
    this.metrics = opts.metrics ?? new Metrics();
    if (opts.mode === "terminate") {
      const policy: SaPolicy = {
        suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000,
        seqBlock: 1024, store: memoryStorage(), codec: hostCodec, compress: false,
      };
      const observer = metricsObserver(this.metrics, (event, device, spi, link, reason) => this.reportSession(event, device, spi, event === "open" ? link : reason ?? "closed"));
      this.devices = new DeviceGateway({
        config: (mode) => this.keys.responders(this.responder, policy)(mode), storage: memoryStorage(), observer, holdAcks: true,
        onCommand: (device, id, outcome) => this.reportCommand(device, id, outcome),
      });
    }
    this.client = new BackboneClient({
      host: opts.controller.host, port: opts.controller.port, fallbacks: opts.controller.fallbacks, identity: opts.identity, controllerKey: opts.controller.publicKey,
      queue: { maxMessages: opts.queueMessages ?? 100_000, maxBytes: 64 << 20 },
    });
    this.client.on("message", (m: Message) => this.fromController(m));
    this.client.on("acked", (base: number) => this.durable(base));
    this.client.on("connected", () => opts.log.info("backbone up", { controller: `${this.client.controller.host}:${this.client.controller.port}` }));
    this.client.on("disconnected", (reason: string) => opts.log.warn("backbone down, reconnecting", { reason }));
    this.telemetry = new GatewayTelemetry(this.metrics, opts.mode, this.stats);
    const devices = this.devices;
    this.telemetry.watch(() => this.client.peer.out.count, devices && (() => devices.online().length));
    if (devices) this.metrics.watchKeyLimits(() => devices.keyLimits());
    // First in this run: whatever sessions an earlier run reported, this process holds none of them.
    if (devices) this.toController(allSessionsClosed("gateway restarted"));
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
    this.telemetry.sample();
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
      if (this.toController({ kind: KIND_UPLINK, device: this.deviceIds.get(u.device), payload })) {
        this.stats.up++;
        this.stats.upBytes += u.body.length;
        this.unconfirmed.push(this.client.peer.out.end - 1, u.device, u.id);
      } else d.release(u.device, u.id);
    }
    for (const o of d.takeOutput()) this.out.push(o);
    if (this.out.length > 0) this.emit("output");
  }

  /**
   * The controller has durably taken every backbone message numbered below `base` (published to MQTT):
   * the readings among them are acknowledged to their devices now, and not before.
   */
  private durable(base: number): void {
    const d = this.devices;
    if (d === undefined) return;
    const now = Date.now();
    this.unconfirmed.shiftBelow(base, (device, id) => d.confirm(device, id, now));
    this.pump();
  }

  /** A device session confirmed or ended, for the controller's session log. Never throws into the timer. */
  private reportSession(event: "open" | "close", device: string, spi: number, text: string): void {
    try {
      this.toController(sessionEvent(event, device, spi, text));
    } catch (e) {
      this.opts.log.warn("a session event was not sent", { device, error: String(e) });
    }
  }

  /** What became of a command from the controller, which closes (or re-sends) it. Never throws into the timer. */
  private reportCommand(device: string, id: number, state: CommandState): void {
    try {
      this.toController(commandEvent(device, id, state));
    } catch (e) {
      this.opts.log.warn("a command event was not sent", { device, error: String(e) });
    }
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
    } else if (m.kind === KIND_DOWNLINK && this.devices && m.payload.length >= COMMAND_HEAD) {
      const id = (m.payload[0] << 16) | (m.payload[1] << 8) | m.payload[2];
      const device = hexOf(m.device), body = m.payload.slice(COMMAND_HEAD);
      this.stats.down++;
      this.stats.downBytes += body.length;
      // Refused: no session with the device here (it went elsewhere, or this gateway restarted): the
      // controller sends it again when the device is next heard.
      const queued = this.devices.command(device, body, Date.now(), id) >= 0;
      this.reportCommand(device, id, queued ? "queued" : "refused");
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

/** A FIFO of (backbone number, device, message id), in three arrays and a head: no object per reading. */
class Unconfirmed {
  private nums: number[] = [];
  private devices: string[] = [];
  private ids: number[] = [];
  private head = 0;

  push(num: number, device: string, id: number): void {
    this.nums.push(num);
    this.devices.push(device);
    this.ids.push(id);
  }

  shiftBelow(base: number, each: (device: string, id: number) => void): void {
    while (this.head < this.nums.length && this.nums[this.head] < base) {
      each(this.devices[this.head], this.ids[this.head]);
      this.head++;
    }
    if (this.head === this.nums.length) {
      this.nums = [];
      this.devices = [];
      this.ids = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.nums.length) {
      this.nums = this.nums.slice(this.head);
      this.devices = this.devices.slice(this.head);
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
  }
}
