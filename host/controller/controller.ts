// The controller process: durable store (devices, wrapped keys, sessions, audit), admin API, the backbone
// server for gateways, application delivery over MQTT, and telemetry.
//
//   - Terminate-mode gateways get device keys as KEYS grants when they connect and whenever the registry
//     changes (provisioned, rotated, revoked); they hand psk evolutions back (KEYS_EVOLVED), stored at once.
//   - Relay-mode gateways get no keys: the controller ends those device sessions itself (host/gateway/devices.ts
//     over RELAY_UP / RELAY_DOWN, each device link named "<gateway>|<link>").
//   - Readings go to MQTT (<prefix>/devices/<id>/up); commands from MQTT (<prefix>/devices/<id>/down) go to
//     the device through whichever gateway last carried it.
import type { PskKeys } from "../../firmware/handshake/psk";
import { memoryStorage } from "../../firmware/runtime/facade";
import type { SaPolicy } from "../../firmware/session/sa";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import { DurableAcks } from "../backbone/durable";
import { readSessionEvent } from "../backbone/session-event";
import { BackboneServer } from "../backbone/link";
import {
  COMMAND_STATE, KIND_DOWNLINK, KIND_KEYS, KIND_KEYS_EVOLVED, KIND_RELAY_DOWN, KIND_RELAY_UP, KIND_SESSION_EVENT, KIND_UPLINK, type Message,
} from "../backbone/frame";
import { hostProvider } from "../crypto/provider";
import { hostCodec } from "../record/gpcomp";
import { DeviceGateway } from "../gateway/devices";
import { KeyTable } from "../gateway/keytable";
import { RESPONDER_GRANT, UPLINK_HEAD, type GatewayMode } from "../gateway/gateway";
import { metricsObserver } from "../gateway/telemetry";
import { Metrics } from "../telemetry/metrics";
import { telemetryRoutes } from "../telemetry/metrics-http";
import type { Logger } from "../telemetry/log";
import { createAdminApi, type AdminApi } from "./admin";
import { adminCredentials, applicationCredentials, firstOf } from "./principal";
import { consolePages } from "./console/pages";
import { MemoryDeviceStatus, ONLINE_WINDOW_MS, type DeviceStatusBook } from "./device-status";
import { LiveFeed } from "./live/feed";
import { gatewayRows } from "./live/gateways";
import { liveRoutes, type CommandOutcome } from "./live/routes";
import { Delivery, type BrokerChoice } from "./mqtt";
import { SessionRecorder } from "./session-recorder";
import { openControllerStore, type ControllerStore, type StoreOptions } from "./store";
import type { AdminToken } from "./tokens";

export type GatewayEntry = { kid: string; publicKey: Uint8Array; mode: GatewayMode };

export type ControllerOptions = {
  store: StoreOptions;
  /** The controller's backbone key pair (gateways pin its public key). */
  keys: { S: Uint8Array; s: Uint8Array };
  gateways: GatewayEntry[];
  backbone: { port: number; host?: string };
  /** tokens: the admin API's; metricsTokens: those that may read /metrics and /status only (admin tokens may too). */
  admin: { port: number; host?: string; tokens: AdminToken[]; metricsTokens?: AdminToken[] };
  mqtt: BrokerChoice;
  log: Logger;
  /** How often the registry is re-read for devices provisioned since (ms). */
  refreshMs?: number;
};

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const utf8 = (b: Uint8Array) => Buffer.from(b).toString("utf8");

export class Controller {
  readonly metrics = new Metrics();
  readonly keys = new KeyTable();
  store!: ControllerStore;
  server!: BackboneServer;
  delivery!: Delivery;
  admin!: AdminApi;
  relay!: DeviceGateway;
  sessionLog!: SessionRecorder;
  readonly stats = { uplinks: 0, relayed: 0, commands: 0, grantsSent: 0, badMessages: 0 };
  /** Where each device was last heard: the gateway, and in relay mode the link on it. */
  readonly status: DeviceStatusBook = new MemoryDeviceStatus();
  /** The fleet now and as it changes, for the admin API's fleet routes, event stream and web console. */
  feed!: LiveFeed;
  private known = new Map<string, number>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private relayPumpDue = false;
  /** Per gateway: which of its messages are durable here, for the acknowledgements it gets. */
  private readonly acks = new Map<string, DurableAcks>();
  private responderGrant = "";

  constructor(private readonly opts: ControllerOptions) {}

  async start(): Promise<{ backbone: number; admin: number; mqtt: string }> {
    const { log } = this.opts;
    this.store = await openControllerStore({ log: log.child("store", {}), ...this.opts.store });
    const rk = await this.store.registry.responderKey();
    this.responderGrant = `public=${hex(rk.publicKey)};secret=${hex(rk.secret)}`;
    const policy: SaPolicy = {
      suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000,
      seqBlock: 1024, store: memoryStorage(), codec: hostCodec, compress: false,
    };
    this.feed = new LiveFeed({
      store: this.store, status: this.status, gateways: () => gatewayRows(this.opts.gateways, this.server, this.acks), queues: () => ({ "mqtt-out": this.delivery?.queued ?? 0 }),
    });
    this.sessionLog = new SessionRecorder(this.store.sessions, (peer) => this.keys.deviceOfPeer(peer), log.child("sessions", {}), undefined, (w) => {
      if (w.event === "open" && w.link !== undefined) this.status.linked(w.device, w.link);
      this.feed.sessionChanged(w);
    });
    // The relay sessions a previous run of this controller held ended with it.
    for (const g of this.opts.gateways) if (g.mode === "relay") this.sessionLog.allClosed(g.kid.toLowerCase(), "controller restarted");
    const observer = metricsObserver(this.metrics, (event, peer, spi, link, reason) => this.sessionLog.report(splitLink(link)[0], event, peer, spi, reason));
    this.relay = new DeviceGateway({
      config: this.keys.responders({ S: rk.publicKey, s: rk.secret }, policy), storage: memoryStorage(), observer, holdAcks: true,
      onCommand: (peer, id, outcome) => this.feed.commandState(this.keys.deviceOfPeer(peer), id, outcome),
    });
    await this.refreshKeys();
    this.store.registry.onRevoke((e) => {
      // Relay mode: the sessions this controller ends itself go now; terminate gateways end theirs on the
      // withdrawn grant below.
      this.relay.end(this.keys.peerOf(e.deviceId), Date.now());
      this.pumpRelay();
      this.keys.remove(e.deviceId);
      this.known.delete(e.deviceId);
      this.grantAll(e.deviceId);
      this.feed.registryChanged(e.deviceId, e.reason);
    });

    const gateways = new Map(this.opts.gateways.map((g) => [g.kid.toLowerCase(), g]));
    // Acknowledged to a gateway only once durable (autoAck off): see durable() and DurableAcks.
    this.server = new BackboneServer({ keys: { S: this.opts.keys.S, s: this.opts.keys.s }, gateways: (kid) => gateways.get(hex(kid))?.publicKey, autoAck: false });
    this.server.on("message", (m: Message, gw: string, seq: number) => {
      const acks = this.acksOf(gw);
      acks.begin(seq);
      this.fromGateway(m, gw, () => this.durable(gw, acks, seq));
    });
    this.server.on("gateway-up", (gw: string) => {
      log.info("gateway connected", { gateway: gw, mode: gateways.get(gw)?.mode });
      if (gateways.get(gw)?.mode === "terminate") this.grantGateway(gw);
    });
    this.server.on("gateway-down", (gw: string, reason: string) => log.warn("gateway disconnected", { gateway: gw, reason }));
    const bb = await this.server.listen(this.opts.backbone.port, this.opts.backbone.host);

    // The embedded broker lets in the applications the store has credentials for (./mqtt-credentials.ts).
    const broker: BrokerChoice = this.opts.mqtt.kind === "embedded" ? { ...this.opts.mqtt, logins: this.store.mqtt } : this.opts.mqtt;
    this.delivery = new Delivery({ broker, metrics: this.metrics, log: log.child("mqtt", {}), onCommand: (d, p) => {
      const out = this.command(d, p);
      return "rejected" in out ? out : true;
    } });
    await this.delivery.start();

    // /metrics (Prometheus) and /status (the live status line's numbers) sit beside the /v1 API, behind a
    // metrics or an admin token.
    const telemetry = telemetryRoutes({
      metrics: this.metrics, tokens: [this.opts.admin.metricsTokens ?? [], this.opts.admin.tokens],
      status: () => ({ gateways: this.server.connected().length, devices: this.keys.size, ...this.stats }),
    });
    this.admin = createAdminApi({
      store: this.store, tokens: this.opts.admin.tokens, telemetry, log: (e) => log[e.level](e.msg, { ...e, msg: undefined }),
      // Admin tokens, and applications' MQTT logins as credentials scoped to their devices (the console's sign-in).
      credentials: firstOf(adminCredentials(this.opts.admin.tokens), applicationCredentials(async (u, p) => {
        const id = await this.store.mqtt.login(u, p);
        return id?.kind === "application" ? id : undefined;
      })),
      routes: liveRoutes({ store: this.store, feed: this.feed, command: (d, p) => this.command(d, p) }), pages: consolePages(),
    });
    this.metrics.watchListener("admin", () => ({ ...this.admin.dropped }));
    this.metrics.watchListener("backbone", () => {
      const s = this.server.stats;
      return { evicted: s.evicted, refused: s.refused, silent: s.silent };
    });
    const admin = await this.admin.listen(this.opts.admin.port, this.opts.admin.host);
    this.metrics.watchQueue("mqtt-out", () => this.delivery.queued);
    // Online: heard from in the last ten minutes (a LoRa board may report only every few minutes).
    this.metrics.watchDevicesOnline(() => this.status.online(Date.now(), ONLINE_WINDOW_MS));
    this.metrics.watchKeyLimits(() => this.relay.keyLimits());

    this.timers.push(setInterval(() => this.tick(), 50));
    this.timers.push(setInterval(() => void this.refreshKeys().catch((e) => log.error("registry refresh failed", { error: String(e) })), this.opts.refreshMs ?? 2000));
    log.info("controller started", { backbone: bb.port, admin: admin.port, mqtt: this.delivery.brokerUrl });
    return { backbone: bb.port, admin: admin.port, mqtt: this.delivery.brokerUrl };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.feed?.close();
    await this.admin?.close().catch(() => {});
    await this.server?.close().catch(() => {});
    await this.delivery?.stop().catch(() => {});
    await this.sessionLog?.idle();
    await this.store?.close().catch(() => {});
  }

  /** Loads devices the registry has and the table lacks (provisioned or rotated since), and grants them. */
  private async refreshKeys(): Promise<void> {
    const reg = this.store.registry;
    for (const d of await reg.list({ includeRevoked: false })) {
      if (this.known.get(d.id) === d.generation) continue;
      this.known.set(d.id, d.generation);
      if (d.mode === "psk") {
        const k = await reg.lookupPsk(d.id);
        if (k) this.keys.setPsk(d.id, { current: k.current, previous: k.previous });
      } else if (d.kid && d.publicKey) {
        this.keys.setDh(d.id, d.kid, Uint8Array.from(Buffer.from(d.publicKey, "hex")));
      }
      this.grantAll(d.id);
    }
  }

  private terminateGateways(): string[] {
    return this.opts.gateways.filter((g) => g.mode === "terminate").map((g) => g.kid.toLowerCase());
  }

  private grantAll(device: string): void {
    for (const gw of this.terminateGateways()) this.sendKeys(gw, device, this.keys.grant(device));
  }

  private grantGateway(gw: string): void {
    this.sendKeys(gw, RESPONDER_GRANT, this.responderGrant);
    for (const id of this.known.keys()) this.sendKeys(gw, id, this.keys.grant(id));
  }

  private sendKeys(gw: string, device: string, grant: string): void {
    // Before the backbone is up there is no one to tell: gateways get everything when they connect.
    if (this.server === undefined) return;
    this.server.send(gw, { kind: KIND_KEYS, device: Buffer.from(device), payload: Buffer.from(grant) });
    this.stats.grantsSent++;
  }

  /** The acknowledgement state of a gateway's current run (a new run, after the gateway restarted, starts afresh). */
  private acksOf(gw: string): DurableAcks {
    const run = this.server.peers.get(gw)!.peerRunHex;
    let a = this.acks.get(gw);
    if (a === undefined || a.run !== run) {
      a = new DurableAcks(run);
      this.acks.set(gw, a);
    }
    return a;
  }

  /** A gateway's message numbered `seq` is durable: the gateway hears so once every one before it is too. */
  private durable(gw: string, acks: DurableAcks, seq: number): void {
    const taken = acks.finish(seq);
    if (taken !== undefined) this.server.ack(gw, taken, acks.run);
  }

  /** `done` once the message is durable here (an UPLINK: the broker has it), when the gateway may forget it. */
  private fromGateway(m: Message, gw: string, done: () => void): void {
    if (m.kind === KIND_UPLINK && m.payload.length >= UPLINK_HEAD) {
      const peer = hex(m.device);
      const device = this.keys.deviceOfPeer(peer);
      this.status.heard(device, { gateway: gw, peer }, Date.now());
      const p = Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.length);
      this.publish(device, p.readUIntBE(0, 3), m.payload.subarray(UPLINK_HEAD), gw, "terminate", p.readUIntBE(3, 6), done);
      return;
    }
    // Nothing else waits on MQTT: a relayed packet's reading is held unacknowledged by this.relay until
    // published, and a lost key evolution costs the device a resynchronisation, not data.
    done();
    if (m.kind === KIND_RELAY_UP) {
      this.stats.relayed++;
      const at = Date.now();
      this.relay.input(`${gw}|${utf8(m.source)}`, m.spdu, at);
      this.pumpRelay(at);
    } else if (m.kind === KIND_KEYS_EVOLVED) {
      const device = utf8(m.device);
      const keys = this.keys.applyEvolved(device, utf8(m.payload)) ? this.keys.pskStore(Buffer.from(device, "hex")) : undefined;
      if (keys) this.saveEvolved(device, keys);
      else this.stats.badMessages++;
    } else if (m.kind === KIND_SESSION_EVENT) {
      const n = m.event === COMMAND_STATE ? readSessionEvent(m) : undefined;
      if (n === undefined) this.sessionLog.fromGateway(gw, m);
      else if (typeof n !== "string" && n.event === "command") this.feed.commandState(this.keys.deviceOfPeer(n.device), n.id, n.state);
      else this.stats.badMessages++;
    } else {
      this.stats.badMessages++;
    }
  }

  /**
   * `since`: when the message reached the gateway (terminate) or this controller (relay), ms. `done` once
   * the broker has it; a publish that fails or is dropped is tried again a second later, so nothing waiting
   * on `done` (a gateway's acknowledgement, a device's ACK) goes ahead without it.
   */
  private publish(device: string, id: number, body: Uint8Array, gw: string, mode: string, since: number, done: () => void): void {
    this.stats.uplinks++;
    this.metrics.message("up", mode, body.length);
    this.metrics.latency("up", mode, Math.max(0, Date.now() - since) / 1000);
    const u = { device, seq: id, payload: Uint8Array.from(body), gateway: gw };
    this.feed.reading(device, id, u.payload, gw, Date.now());
    const attempt = () => this.delivery.publishUplink(u, (ok) => {
      if (ok) done();
      else setTimeout(() => this.stopped || attempt(), 1000).unref();
    });
    attempt();
  }

  private pumpRelay(since = Date.now()): void {
    for (const u of this.relay.takeUplinks()) {
      const device = this.keys.deviceOfPeer(u.device);
      const [gw, link] = splitLink(u.link);
      this.status.heard(device, { gateway: gw, link, peer: u.device }, Date.now());
      this.publish(device, u.id, u.body, gw, "relay", since, () => {
        this.relay.confirm(u.device, u.id, Date.now());
        this.pumpRelaySoon();
      });
    }
    for (const o of this.relay.takeOutput()) {
      const [gw, link] = splitLink(o.link);
      this.server.send(gw, { kind: KIND_RELAY_DOWN, source: Buffer.from(link), spdu: o.bytes });
    }
  }

  /** Once, after the PUBACKs arriving together: their device ACKs go out sealed in as few records as can be. */
  private pumpRelaySoon(): void {
    if (this.relayPumpDue) return;
    this.relayPumpDue = true;
    setImmediate(() => {
      this.relayPumpDue = false;
      this.pumpRelay();
    });
  }

  private tick(): void {
    this.relay.poll(Date.now());
    this.pumpRelay();
    for (const e of this.keys.takeEvolved()) this.saveEvolved(e.device, e.keys);
  }

  private saveEvolved(device: string, keys: PskKeys): void {
    void this.store.registry.savePsk(device, keys).catch((e) => this.opts.log.error("saving evolved psk keys failed", { device, error: String(e) }));
  }

  /** A command (from MQTT or the admin API): to the device through the gateway that last carried it. */
  private command(device: string, payload: Uint8Array): CommandOutcome {
    const seen = this.status.get(device, Date.now());
    if (!seen) {
      this.feed.command(device, "rejected", null, payload.length, "device not heard from yet");
      return { rejected: "device not heard from yet" };
    }
    this.stats.commands++;
    const relayed = this.gatewayMode(seen.gateway) === "relay";
    this.metrics.message("down", relayed ? "relay" : "terminate", payload.length);
    let id: number | null = null;
    if (relayed) {
      id = this.relay.command(seen.peer, payload, Date.now());
      if (id < 0) {
        const why = "no session with this controller yet, or its command queue is full";
        this.feed.command(device, "rejected", null, payload.length, why);
        return { rejected: why };
      }
      this.pumpRelay();
    } else {
      this.server.send(seen.gateway, { kind: KIND_DOWNLINK, device: Buffer.from(seen.peer, "hex"), payload });
    }
    this.feed.command(device, "sent", id, payload.length);
    return { id, gateway: seen.gateway };
  }

  private gatewayMode(kid: string): GatewayMode | undefined {
    return this.opts.gateways.find((g) => g.kid.toLowerCase() === kid)?.mode;
  }
}

function splitLink(l: string): [string, string] {
  const i = l.indexOf("|");
  return [l.slice(0, i), l.slice(i + 1)];
}
