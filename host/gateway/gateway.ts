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
import { KIND_DOWNLINK, KIND_KEYS, KIND_KEYS_EVOLVED, KIND_RELAY_DOWN, KIND_RELAY_UP, KIND_SESSION_ANSWER, KIND_UPLINK, type AppMessage, type Message } from "../backbone/frame";
import { allSessionsClosed, commandEvent, sessionEvent, type CommandState } from "../backbone/session-event";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import { hostCodec } from "../record/gpcomp";
import type { Logger } from "../telemetry/log";
import { Metrics } from "../telemetry/metrics";
import { applyDeviceGrant, DeviceRef, DeviceSide, DownPacket, GRANTS_BEGIN, GRANTS_END, RESPONDER_GRANT, responderGrant } from "./device-side";
import { DeviceGateway } from "./devices";
import { DeviceShards } from "./shards";
import { KeyTable } from "./keytable";
import { SessionHandoff } from "./session-handoff";
import { GatewayTelemetry, metricsObserver } from "./telemetry";
import type { RadioSignal } from "./radio-signal";
import { StatusReporter } from "./status";

export type GatewayMode = "terminate" | "relay";
export { GRANTS_BEGIN, GRANTS_END, RESPONDER_GRANT };
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
  /**
   * Terminate mode: worker threads the device sessions are spread over, by SPI (./shards.ts); 1 (the
   * default) keeps them on this thread.
   */
  deviceThreads?: number;
  /** How often the gateway may report its queues and its devices' signal to the controller (GATEWAY_STATUS); 5 s by default. */
  statusEveryMs?: number;
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
  /** The devices granted since GRANTS_BEGIN, while a connection's whole set of grants comes in. */
  private regranted: Set<string> | undefined;
  /** The device side (terminate mode): on this thread, or over worker threads (`shards`). */
  readonly devices: DeviceSide | undefined;
  readonly shards: DeviceShards | undefined;
  /** Terminate mode on one thread: device sessions handed to the controller, and resumed from it (./session-handoff.ts). */
  readonly handoff: SessionHandoff | undefined;
  readonly client: BackboneClient;
  private responder: KeyPair = nodeKeyPair(); // replaced by the controller's grant; until then dh handshakes fail
  private readonly out: DownPacket[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly linkNames = new ByteNames("utf8");
  /** Readings on the backbone waiting for the controller's acknowledgement: backbone number, device, id. */
  private readonly unconfirmed = new Unconfirmed();
  private ackOutputDue = false;
  readonly metrics: Metrics;
  private readonly telemetry: GatewayTelemetry;
  /** Its queues and its devices' signal, for the controller (./status.ts). */
  readonly status: StatusReporter;

  constructor(private readonly opts: GatewayOptions) {
    super();
    this.metrics = opts.metrics ?? new Metrics();
    if (opts.mode === "terminate") {
      const threads = opts.deviceThreads ?? 1;
      // (Over worker threads, each worker hands over its own sessions: ./shard-worker.ts.)
      if (threads === 1) this.handoff = new SessionHandoff((m) => this.toController(m));
      const policy: SaPolicy = {
        suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000,
        seqBlock: 1024, store: this.handoff?.storage ?? memoryStorage(), codec: hostCodec, compress: false,
      };
      const observer = metricsObserver(this.metrics, (event, device, spi, link, reason) => this.reportSession(event, device, spi, event === "open" ? link : reason ?? "closed"));
      if (threads > 1) {
        this.devices = this.shards = new DeviceShards(threads, observer);
        this.shards.onController = (m) => this.toController(m);
        this.shards.onProblem = (problem) => opts.log.warn("ignored a session answer", { problem });
      } else {
        // Made again only when the responder's key changes (its grant), so endpoints share them.
        let configs = { me: this.responder, of: this.keys.responders(this.responder, policy) };
        const config = (mode: "dh" | "psk") => {
          if (configs.me !== this.responder) configs = { me: this.responder, of: this.keys.responders(this.responder, policy) };
          return configs.of(mode);
        };
        this.devices = new DeviceGateway({ config, storage: memoryStorage(), observer, holdAcks: true, handoff: this.handoff });
      }
      this.devices.onUplink = (d, id, body, off, len, at) => this.uplink(d, id, body, off, len, at);
      this.devices.onOutput = () => this.pump();
      this.devices.onCommand = (device, id, state) => this.reportCommand(device, id, state);
    }
    this.client = new BackboneClient({
      host: opts.controller.host, port: opts.controller.port, fallbacks: opts.controller.fallbacks, identity: opts.identity, controllerKey: opts.controller.publicKey,
      queue: { maxMessages: opts.queueMessages ?? 100_000, maxBytes: 64 << 20 },
    });
    this.client.on("message", (m: Message) => this.fromController(m));
    this.client.on("acked", (base: number) => this.durable(base));
    this.client.on("connected", () => {
      this.status.reconnected();
      opts.log.info("backbone up", { controller: `${this.client.controller.host}:${this.client.controller.port}` });
    });
    this.client.on("disconnected", (reason: string) => opts.log.warn("backbone down, reconnecting", { reason }));
    this.telemetry = new GatewayTelemetry(this.metrics, opts.mode, this.stats);
    const devices = this.devices;
    const out = () => this.client.peer.out;
    this.status = new StatusReporter({ backbone: () => ({ messages: out().count, bytes: out().bytes }), devices, dropped: () => this.stats.dropped }, opts.statusEveryMs ?? 5_000);
    this.telemetry.watch(() => this.client.peer.out.count, devices && (() => devices.onlineCount()));
    if (devices) this.metrics.watchKeyLimits(() => devices.keyLimits());
    // First in this run: whatever sessions an earlier run reported, this process holds none of them.
    if (devices) this.toController(allSessionsClosed("gateway restarted"));
  }

  start(): void {
    this.client.start();
    this.timer = setInterval(() => this.tick(), 50);
  }

  /**
   * A whole packet from a device link ("ble:<address>" or "lora"), with what the radio measured of it when
   * the link says (RSSI, LoRa SNR). Never throws on bad input.
   */
  input(link: string, packet: Uint8Array, signal?: RadioSignal): void {
    if (this.devices) {
      if (signal !== undefined) this.status.signals.heard(link, packet, signal);
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
    await this.shards?.close();
    await this.client.close();
  }

  private tick(): void {
    this.telemetry.sample();
    if (this.devices) {
      this.devices.poll(Date.now());
      this.pump();
      const evolved = this.shards !== undefined ? this.shards.takeEvolved() : this.keys.takeEvolved();
      for (const e of evolved) this.toController({ kind: KIND_KEYS_EVOLVED, device: Buffer.from(e.device), payload: Buffer.from(e.text) });
    }
    if (this.out.length > 0) this.emit("output");
    if (this.client.connected) {
      const report = this.status.next(Date.now());
      if (report !== undefined) this.toController(report);
    }
  }

  /**
   * A reading taken in: written straight into the backbone queue as an UPLINK (no object made for it), and
   * remembered until the controller acknowledges it. False when the queue is full.
   */
  private uplink(d: DeviceRef, id: number, body: Uint8Array, off: number, n: number, at: number): boolean {
    const peer = this.client.peer;
    const w = peer.reserve(KIND_UPLINK, d.id, UPLINK_HEAD + n);
    if (w < 0) {
      this.stats.dropped++;
      return false;
    }
    // The message id travels with the reading, so the controller can publish it and filter copies, and so
    // does the time the gateway took it in (ms), for the controller's latency figures.
    // (by hand: Buffer's writeUIntBE boxes a 48-bit number on every call)
    const b = peer.out.buffer;
    const hi = Math.floor(at / 0x100000000), lo = at - hi * 0x100000000;
    b[w] = (id >>> 16) & 0xff;
    b[w + 1] = (id >>> 8) & 0xff;
    b[w + 2] = id & 0xff;
    b[w + 3] = (hi >>> 8) & 0xff;
    b[w + 4] = hi & 0xff;
    b[w + 5] = (lo >>> 24) & 0xff;
    b[w + 6] = (lo >>> 16) & 0xff;
    b[w + 7] = (lo >>> 8) & 0xff;
    b[w + 8] = lo & 0xff;
    for (let i = 0; i < n; i++) b[w + UPLINK_HEAD + i] = body[off + i];
    this.stats.up++;
    this.stats.upBytes += n;
    this.unconfirmed.push(peer.out.end - 1, d, id);
    return true;
  }

  /** The device side's packets for the links; readings went to the backbone as they came (uplink()). */
  private pump(): void {
    const d = this.devices!;
    if (!d.hasOutput) return;
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
    this.unconfirmed.shiftBelow(base, (device, id) => d.confirmOf(device, id, now));
    // The ACK records are sealed on the next check phase, not here: the controller's acknowledgement is
    // read in the same turn as device records, whose backbone batch was scheduled before it (peer.ts
    // flushes on setImmediate too), so the readings leave first and sealing a turn's ACKs does not add to
    // their latency. Several acknowledgements in a turn share one pump.
    if (this.ackOutputDue) return;
    this.ackOutputDue = true;
    setImmediate(this.pumpAcks);
  }

  private readonly pumpAcks = (): void => {
    this.ackOutputDue = false;
    this.pump();
  };

  /** A device session confirmed or ended, for the controller's session log. Never throws into the timer. */
  private reportSession(event: "open" | "close", device: string, spi: number, text: string): void {
    if (event === "open") this.status.signals.opened(device, spi);
    else this.status.signals.closed(spi);
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
      // Refused (told through onCommand): no session with the device here (it went elsewhere, or this
      // gateway restarted): the controller sends it again when the device is next heard.
      this.devices.command(device, body, Date.now(), id);
      this.pump();
    } else if (m.kind === KIND_SESSION_ANSWER && (this.handoff || this.shards)) {
      const problem = (this.handoff ?? this.shards!).answer(m, Date.now());
      if (problem) this.opts.log.warn("ignored a session answer", { problem });
      this.pump();
    } else if (m.kind === KIND_KEYS && this.devices) {
      this.keysMessage(text(m.device), text(m.payload));
    } else if (m.kind === KIND_KEYS && !this.devices) {
      // A relay gateway must never hold device keys: refuse, loudly.
      this.opts.log.error("refused device keys: this gateway relays", { device: text(m.device) });
    }
  }

  /** A KEYS message: a device's grant, the responder's, or one of the two around a connection's whole set. */
  private keysMessage(device: string, grant: string): void {
    this.stats.grants++;
    if (device === GRANTS_BEGIN) {
      this.regranted = new Set();
      return;
    }
    if (device === GRANTS_END) {
      const whole = this.regranted;
      this.regranted = undefined;
      if (whole === undefined) return;
      const away = this.keys.devices().filter((d) => !whole.has(d));
      if (away.length > 0) this.opts.log.info("devices withdrawn while this gateway was away: their keys go", { devices: away.length });
      for (const d of away) this.granted(d, "");
      return;
    }
    this.granted(device, grant);
  }

  /** A grant (or a withdrawal: "") of a device's keys, or of the responder's. */
  private granted(device: string, grant: string): void {
    if (grant === "") this.regranted?.delete(device);
    else this.regranted?.add(device);
    this.shards?.grant(device, grant); // the workers keep their own tables (and the responder's key)
    if (device === RESPONDER_GRANT) {
      this.responder = responderGrant(grant) ?? this.responder;
      return;
    }
    // Withdrawn (revoked, or rotated: the new keys follow): the device's live sessions end. A grant that
    // only carries evolved psk keys leaves them alone.
    if (grant === "") this.opts.log.info("a device's keys were withdrawn: its sessions end", { device });
    const problem = applyDeviceGrant(this.keys, this.shards !== undefined ? { end: () => {} } : this.devices!, device, grant, Date.now());
    if (grant === "") this.pump();
    if (problem) this.opts.log.warn("ignored a key grant", { device, problem });
  }
}

/** A FIFO of (backbone number, device, message id) in rings that grow when full: nothing made per reading. */
class Unconfirmed {
  private nums = new Float64Array(1024);
  private devices: (DeviceRef | undefined)[] = new Array<DeviceRef | undefined>(1024).fill(undefined);
  private ids = new Int32Array(1024);
  private head = 0;
  private tail = 0;

  push(num: number, device: DeviceRef, id: number): void {
    if (this.tail - this.head === this.nums.length) this.grow();
    const i = this.tail++ & (this.nums.length - 1);
    this.nums[i] = num;
    this.devices[i] = device;
    this.ids[i] = id;
  }

  shiftBelow(base: number, each: (device: DeviceRef, id: number) => void): void {
    const mask = this.nums.length - 1;
    while (this.head < this.tail && this.nums[this.head & mask] < base) {
      const i = this.head++ & mask;
      const d = this.devices[i]!;
      this.devices[i] = undefined;
      each(d, this.ids[i]);
    }
  }

  private grow(): void {
    const size = 2 * this.nums.length, mask = this.nums.length - 1;
    const nums = new Float64Array(size), ids = new Int32Array(size);
    const devices = new Array<DeviceRef | undefined>(size).fill(undefined);
    for (let k = this.head; k < this.tail; k++) {
      nums[k - this.head] = this.nums[k & mask];
      devices[k - this.head] = this.devices[k & mask];
      ids[k - this.head] = this.ids[k & mask];
    }
    this.tail -= this.head;
    this.head = 0;
    this.nums = nums;
    this.devices = devices;
    this.ids = ids;
  }
}
