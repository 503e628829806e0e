// The controller process: durable store (devices, wrapped keys, sessions, audit), admin API, the backbone
// server for gateways, application delivery over MQTT, and telemetry. Several may share one Postgres and one
// broker (./cluster/cluster.ts): what they share lives in the database, not in this process.
//
//   - Terminate-mode gateways get device keys as KEYS grants when they connect and whenever the registry
//     changes (provisioned, rotated, revoked: by any controller, read every refreshMs); they hand psk
//     evolutions back (KEYS_EVOLVED), stored at once, and reach the other controllers the same way.
//   - Relay-mode gateways get no keys: the controller ends those device sessions itself (host/gateway/devices.ts
//     over RELAY_UP / RELAY_DOWN, each device link named "<gateway>|<link>"). They are this controller's: a
//     relay gateway that fails over to another controller has its devices handshake again there.
//   - Readings go into the outbox and from there to MQTT (<prefix>/devices/<id>/up), once, acknowledged to
//     the gateway (or the relayed device) once stored; commands from MQTT (<prefix>/devices/<id>/down) are
//     stored, numbered per device, before the broker hears they were taken, then handed to the device's
//     gateway by whichever controller serves it.
import type { PskKeys } from "../../firmware/handshake/psk";
import { memoryStorage } from "../../firmware/runtime/facade";
import type { SaPolicy } from "../../firmware/session/sa";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import { DurableAcks } from "../backbone/durable";
import { BackboneServer } from "../backbone/link";
import {
  COMMAND_STATE, KIND_DOWNLINK, KIND_GATEWAY_STATUS, KIND_KEYS, KIND_KEYS_EVOLVED, KIND_RELAY_DOWN, KIND_RELAY_UP, KIND_SESSION_EVENT, KIND_SESSION_FETCH,
  KIND_SESSION_STATE, KIND_UPLINK, RUN_SIZE, type Message,
  type AppMessage,
} from "../backbone/frame";
import { readSessionEvent } from "../backbone/session-event";
import { sessionAnswer, spiOf } from "../backbone/session-handoff";
import { hostProvider } from "../crypto/provider";
import { hostCodec } from "../record/gpcomp";
import { DeviceGateway } from "../gateway/devices";
import { KeyTable } from "../gateway/keytable";
import { COMMAND_HEAD, UPLINK_HEAD, type GatewayMode } from "../gateway/gateway";
import { metricsObserver } from "../gateway/telemetry";
import { Metrics } from "../telemetry/metrics";
import { telemetryRoutes } from "../telemetry/metrics-http";
import type { Logger } from "../telemetry/log";
import { createAdminApi, type AdminApi } from "./admin";
import { KeyGrants } from "./grants";
import { checkBackboneKey, Cluster, controllerRunId, type ClusterTiming } from "./cluster/cluster";
import { registerClusterMetrics } from "./cluster/metrics";
import type { Reading } from "./cluster/outbox";
import { consolePages } from "./console/pages";
import { MemoryDeviceStatus, ONLINE_WINDOW_MS, type DeviceStatusBook, type Via } from "./device-status";
import { LiveFeed } from "./live/feed";
import { gatewayRows } from "./live/gateways";
import { GatewayReports } from "./live/reports";
import { liveRoutes, type CommandOutcome } from "./live/routes";
import { Delivery, type BrokerChoice } from "./mqtt";
import { SessionRecorder } from "./session-recorder";
import { SessionStore } from "./session-store";
import { adminCredentials, applicationCredentials, firstOf } from "./principal";
import { openControllerStore, type ControllerStore, type StoreOptions } from "./store";
import type { AdminToken } from "./tokens";

export type GatewayEntry = { kid: string; publicKey: Uint8Array; mode: GatewayMode };

export type ControllerOptions = {
  store: StoreOptions;
  /** The controller's backbone key pair (gateways pin its public key; every controller of a cluster has the same). */
  keys: { S: Uint8Array; s: Uint8Array };
  gateways: GatewayEntry[];
  backbone: { port: number; host?: string };
  /** tokens: the admin API's; metricsTokens: those that may read /metrics and /status only (admin tokens may too). */
  admin: { port: number; host?: string; tokens: AdminToken[]; metricsTokens?: AdminToken[] };
  mqtt: BrokerChoice;
  log: Logger;
  /** How often the registry is re-read for devices provisioned, rotated or revoked since (ms). */
  refreshMs?: number;
  /** Leases, sweeps, the dedup window, route refreshes and command lifetime (./cluster/cluster.ts). */
  cluster?: Partial<ClusterTiming>;
  /** A handed-over device session not reported for longer than this is too old to resume (./session-store.ts). */
  sessionMaxAgeMs?: number;
};

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** A peer's run before its HELLO came (peer.ts: all zero). */
const NO_RUN = "00".repeat(RUN_SIZE);
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
  /** Terminate gateways' device sessions, for another gateway (or the same one restarted) to resume. */
  handoff!: SessionStore;
  cluster!: Cluster;
  /** This run's name in the cluster's claims and leases. */
  id = "";
  readonly stats = { uplinks: 0, relayed: 0, commands: 0, grantsSent: 0, badMessages: 0 };
  /**
   * Where each device was last heard by this controller (the gateway, and in relay mode the link on it), for
   * the console; the cluster's routes (./cluster/routes.ts) are what commands go by.
   */
  readonly status: DeviceStatusBook = new MemoryDeviceStatus();
  /** What the gateways connected here report of their queues and their devices' signal (GATEWAY_STATUS). */
  readonly reports = new GatewayReports();
  /** The fleet now and as it changes, for the admin API's fleet routes, event stream and web console. */
  feed!: LiveFeed;
  private grants!: KeyGrants;
  private readonly gateways: Map<string, GatewayEntry>;
  private timers: NodeJS.Timeout[] = [];
  private relayPumpDue = false;
  /** Per gateway: which of its messages are durable here, for the acknowledgements it gets. */
  private readonly acks = new Map<string, DurableAcks>();

  constructor(private readonly opts: ControllerOptions) {
    this.gateways = new Map(opts.gateways.map((g) => [g.kid.toLowerCase(), g]));
  }

  async start(): Promise<{ backbone: number; admin: number; mqtt: string }> {
    const { log } = this.opts;
    this.store = await openControllerStore({ log: log.child("store", {}), ...this.opts.store });
    await checkBackboneKey(this.store.db, this.opts.keys.S).catch(async (e) => {
      await this.store.close();
      throw e;
    });
    const rk = await this.store.registry.responderKey();
    this.grants = new KeyGrants({
      registry: this.store.registry, keys: this.keys, responderGrant: `public=${hex(rk.publicKey)};secret=${hex(rk.secret)}`,
      gateways: () => this.server === undefined ? [] : this.server.connected().filter((gw) => this.gateways.get(gw)?.mode === "terminate"),
      send: (gw, device, grant) => {
        if (!this.server.send(gw, { kind: KIND_KEYS, device: Buffer.from(device), payload: Buffer.from(grant) })) return false;
        this.stats.grantsSent++;
        return true;
      },
      ending: (device) => {
        this.relay.end(this.keys.peerOf(device), Date.now());
        this.pumpRelay();
      },
    });
    const policy: SaPolicy = {
      suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000,
      seqBlock: 1024, store: memoryStorage(), codec: hostCodec, compress: false,
    };
    this.feed = new LiveFeed({
      store: this.store, status: this.status, signal: (device) => this.reports.signal(device),
      gateways: () => gatewayRows(this.opts.gateways, this.server, this.acks, this.reports), queues: () => ({ "mqtt-out": this.delivery?.queued ?? 0 }),
    });
    this.sessionLog = new SessionRecorder(this.store.sessions, (peer) => this.keys.deviceOfPeer(peer), log.child("sessions", {}), undefined, (w) => {
      if (w.event === "open" && w.link !== undefined) this.status.linked(w.device, w.link);
      this.feed.sessionChanged(w);
    });
    this.handoff = new SessionStore(this.store.db, this.store.keyring, (peer) => this.keys.deviceOfPeer(peer), log.child("handoff", {}), this.opts.sessionMaxAgeMs);
    const observer = metricsObserver(this.metrics, (event, peer, spi, link, reason) => this.sessionLog.report(splitLink(link)[0], event, peer, spi, reason));
    this.relay = new DeviceGateway({
      config: this.keys.responders({ S: rk.publicKey, s: rk.secret }, policy), storage: memoryStorage(), observer, holdAcks: true,
    });
    // Queued or refused, the command's dispatch knows already; the device's answer comes here.
    this.relay.onCommand = (peer, id, state) => {
      if (state === "acked" || state === "lost") void this.cluster.dispatch.run(() => this.cluster.dispatch.settle(this.keys.deviceOfPeer(peer), id, state));
    };
    await this.grants.refresh();
    this.store.registry.onKeys((id) => this.grants.refreshDevice(id));
    this.store.registry.onRevoke((e) => {
      this.grants.withdraw(e.deviceId);
      this.handoff.forget(e.deviceId).catch((err) => log.error("forgetting a device's sessions failed", { device: e.deviceId, error: String(err) }));
      this.feed.registryChanged(e.deviceId, e.reason);
    });

    // Acknowledged to a gateway only once durable (autoAck off): see durable() and DurableAcks.
    this.server = new BackboneServer({ keys: { S: this.opts.keys.S, s: this.opts.keys.s }, gateways: (kid) => this.gateways.get(hex(kid))?.publicKey, autoAck: false });
    this.server.on("message", (m: Message, gw: string, seq: number) => {
      const acks = this.acksOf(gw);
      acks.begin(seq);
      this.fromGateway(m, gw, () => this.durable(gw, acks, seq));
    });
    this.server.on("gateway-up", (gw: string) => void this.gatewayUp(gw));
    this.server.on("drain", (gw: string) => this.grants.drained(gw));
    this.server.on("gateway-down", (gw: string, reason: string) => {
      log.warn("gateway disconnected", { gateway: gw, reason });
      void this.cluster.dispatch.run(() => this.cluster.leases.down(gw));
    });
    // The embedded broker lets in the applications the store has credentials for (./mqtt-credentials.ts).
    const broker: BrokerChoice = this.opts.mqtt.kind === "embedded" ? { ...this.opts.mqtt, logins: this.store.mqtt } : this.opts.mqtt;
    this.delivery = new Delivery({
      broker, metrics: this.metrics, log: log.child("mqtt", {}), onCommand: async (d, p) => {
        const out = await this.command(d, p);
        return "rejected" in out ? out : true;
      },
      // An external broker may serve other controllers: what they publish is not published again when taken over.
      onOthersReading: this.opts.mqtt.kind === "embedded" ? undefined : (d, seq) => this.cluster.readings.publishedElsewhere(d, seq),
    });
    const bb = await this.server.listen(this.opts.backbone.port, this.opts.backbone.host);
    // Made before anything can arrive from a gateway (nothing is awaited in between).
    this.id = controllerRunId(bb.port);
    this.cluster = new Cluster({
      db: this.store.db, me: this.id, timing: this.opts.cluster, log: log.child("cluster", {}),
      publish: (r, done) => this.publish(r, done), canPublish: () => this.delivery.connected,
      hand: (gw, device, id, payload) => this.hand(gw, device, id, payload), serves: (gw) => this.runOf(gw), connected: () => this.server.connected(),
      // The application and the console hear what became of a command (waiting is not an end: the command goes again).
      onSettled: (device, id, state) => {
        if (state === "waiting") return;
        this.delivery.publishEvent(device, state === "acked" ? "command-acked" : "command-lost", { id, reason: state });
        this.feed.commandState(device, id, state === "acked" ? "acked" : "lost");
      },
    });
    await this.cluster.start();
    await this.delivery.start();

    // /metrics (Prometheus) and /status (the live status line's numbers) sit beside the /v1 API, behind a
    // metrics or an admin token.
    const telemetry = telemetryRoutes({
      metrics: this.metrics, tokens: [this.opts.admin.metricsTokens ?? [], this.opts.admin.tokens],
      status: () => ({ gateways: this.server.connected().length, devices: this.keys.size, ...this.stats, ...this.cluster.status() }),
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
    this.metrics.watchQueue("backbone-out", () => {
      let n = 0;
      for (const p of this.server.peers.values()) n += p.out.count;
      return n;
    });
    // Online: heard from in the last ten minutes, by any controller (a LoRa board may report only every few minutes).
    this.metrics.watchDevicesOnline(() => this.cluster.online);
    this.metrics.watchKeyLimits(() => this.relay.keyLimits());
    registerClusterMetrics(this.metrics.registry, () => this.cluster);
    this.reports.register(this.metrics.registry, ONLINE_WINDOW_MS);

    this.timers.push(setInterval(() => this.tick(), 50));
    this.timers.push(setInterval(() => void this.grants.refreshChanged().catch((e) => log.error("registry refresh failed", { error: String(e) })), this.opts.refreshMs ?? 2000));
    log.info("controller started", { id: this.id, backbone: bb.port, admin: admin.port, mqtt: this.delivery.brokerUrl });
    return { backbone: bb.port, admin: admin.port, mqtt: this.delivery.brokerUrl };
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.feed?.close();
    await this.admin?.close().catch(() => {});
    await this.server?.close().catch(() => {});
    // The broker takes what it can; the outbox then records which it took (the rest another controller publishes).
    await this.delivery?.stop().catch(() => {});
    await this.cluster?.stop().catch(() => {});
    await this.sessionLog?.idle();
    await this.store?.close().catch(() => {});
  }

  /** A gateway's run (its backbone run id) while it is connected here. */
  private runOf(gw: string): string | undefined {
    const p = this.server.peers.get(gw);
    return p?.connected === true ? p.peerRunHex : undefined;
  }

  private async gatewayUp(gw: string): Promise<void> {
    const mode = this.gateways.get(gw)?.mode ?? "terminate";
    this.opts.log.info("gateway connected", { gateway: gw, mode });
    const { dispatch } = this.cluster;
    const run = await this.helloFrom(gw);
    if (run === undefined) return; // gone again before it said hello
    await dispatch.run(async () => {
      const before = await this.cluster.leases.up(gw, run, mode);
      // Relay sessions live in the controller the gateway is connected to: those another one (or an earlier
      // run of this one) held ended with that connection.
      if (mode === "relay" && before?.controller !== this.id) this.sessionLog.allClosed(gw, "controller changed");
    });
    if (mode === "terminate") {
      // The registry as it is now, not as last read: another controller may have stored an evolution.
      await this.grants.refresh().catch((e) => this.opts.log.error("registry refresh failed", { error: String(e) }));
      this.grants.grantGateway(gw);
    }
    await dispatch.run(() => dispatch.gatewayUp(gw));
  }

  /** The gateway's run once its HELLO (the first thing it sends on a connection) is in; undefined if it left first. */
  private async helloFrom(gw: string): Promise<string | undefined> {
    const p = this.server.peers.get(gw);
    for (let waited = 0; p?.connected === true && waited < 10_000; waited += 10) {
      if (p.peerRunHex !== NO_RUN) return p.peerRunHex;
      await new Promise((r) => setTimeout(r, 10));
    }
    return undefined;
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

  /** `done` once the message is durable here (an UPLINK: stored in the outbox), when the gateway may forget it. */
  private fromGateway(m: Message, gw: string, done: () => void): void {
    if (m.kind === KIND_UPLINK && m.payload.length >= UPLINK_HEAD) {
      const peer = hex(m.device);
      const p = Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.length);
      const r: Reading = { device: this.keys.deviceOfPeer(peer), id: p.readUIntBE(0, 3), gateway: gw, mode: "terminate", body: m.payload.slice(UPLINK_HEAD), receivedMs: p.readUIntBE(3, 6) };
      this.heard(r, { gateway: gw, peer });
      this.cluster.reading(r, { gateway: gw, run: this.acksOf(gw).run, link: null }, done);
      return;
    }
    if (m.kind === KIND_SESSION_STATE || m.kind === KIND_SESSION_FETCH) {
      // Durable once stored (or claimed): a grant lost with a controller is asked for again.
      // A gateway whose queue is full asks again (its fetch times out): the answer is dropped and counted.
      const answer = (spi: number, text: string) => this.toGateway(gw, sessionAnswer(spi, text));
      const spi = spiOf(m.device);
      if (m.kind === KIND_SESSION_STATE) this.handoff.report(gw, hex(m.device), utf8(m.payload), answer, done);
      else if (spi >= 0) this.handoff.fetch(gw, spi, answer, done);
      else {
        this.stats.badMessages++;
        done();
      }
      return;
    }
    // Nothing else waits on the database: a relayed packet's reading is held unacknowledged by this.relay
    // until stored, a lost key evolution costs the device a resynchronisation, not data, and a command report
    // that is lost leaves its command to be handed again.
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
    } else if (m.kind === KIND_SESSION_EVENT && m.event === COMMAND_STATE) {
      const n = readSessionEvent(m);
      if (typeof n === "string" || n.event !== "command") this.stats.badMessages++;
      else void this.cluster.dispatch.run(() => this.cluster.dispatch.settle(this.keys.deviceOfPeer(n.device), n.id, n.state));
    } else if (m.kind === KIND_SESSION_EVENT) {
      this.sessionLog.fromGateway(gw, m);
    } else if (m.kind === KIND_GATEWAY_STATUS) {
      if (!this.reports.take(gw, m.status, (peer) => this.keys.deviceOfPeer(peer), Date.now())) this.stats.badMessages++;
    } else {
      this.stats.badMessages++;
    }
  }

  /** A reading taken in here (before the outbox has it), for the console. */
  private heard(r: Reading, via: Via): void {
    this.stats.uplinks++;
    const now = Date.now();
    this.status.heard(r.device, via, now);
    this.feed.reading(r.device, r.id, r.body, r.gateway, now);
  }

  /** A stored reading to the broker (the cluster's publish): `done(true)` on its PUBACK. */
  private publish(r: Reading, done: (ok: boolean) => void): void {
    this.metrics.message("up", r.mode, r.body.length);
    this.metrics.latency("up", r.mode, Math.max(0, Date.now() - r.receivedMs) / 1000);
    this.delivery.publishUplink({ device: r.device, seq: r.id, payload: r.body, gateway: r.gateway, receivedAt: r.receivedMs }, done);
  }

  private pumpRelay(since = Date.now()): void {
    for (const u of this.relay.takeUplinks()) {
      const [gw, link] = splitLink(u.link);
      const r: Reading = { device: this.keys.deviceOfPeer(u.device), id: u.id, gateway: gw, mode: "relay", body: u.body, receivedMs: since };
      this.heard(r, { gateway: gw, link, peer: u.device });
      this.cluster.reading(r, { gateway: gw, run: this.runOf(gw) ?? "", link }, () => {
        this.relay.confirm(u.device, u.id, Date.now());
        this.pumpRelaySoon();
      });
    }
    for (const o of this.relay.takeOutput()) {
      const [gw, link] = splitLink(o.link);
      this.toGateway(gw, { kind: KIND_RELAY_DOWN, source: Buffer.from(link), spdu: o.bytes }); // lost as on the air: the device sends again
    }
  }

  /** Queues a message for a gateway; one its full queue refuses is counted (sesame_queue_dropped_total{queue="backbone-out"}). */
  private toGateway(gw: string, m: AppMessage): boolean {
    if (this.server.send(gw, m)) return true;
    this.metrics.queueDropped("backbone-out");
    return false;
  }

  /** Once, after the stores committing together: their device ACKs go out sealed in as few records as can be. */
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

  /**
   * A command from MQTT or the admin API: stored under the device's next id before the broker (or the
   * API's caller) hears it was taken (the returned promise settles first), then handed to the device's
   * gateway by whichever controller serves it.
   */
  private async command(device: string, payload: Uint8Array): Promise<CommandOutcome> {
    const taken = await this.cluster.commands.take(device, payload, this.id);
    if ("rejected" in taken) {
      this.feed.command(device, "rejected", null, payload.length, taken.rejected);
      return taken;
    }
    this.stats.commands++;
    this.feed.command(device, "sent", taken.id, payload.length);
    void this.cluster.dispatch.run(() => this.cluster.dispatch.taken(device, taken.id, payload));
    return taken;
  }

  /** Puts a command on its way to a gateway connected here (./cluster/dispatch.ts Hand). */
  private hand(gw: string, device: string, id: number, payload: Uint8Array): "handed" | "refused" | "away" {
    if (this.runOf(gw) === undefined) return "away";
    const peer = this.keys.peerOf(device);
    if (this.gateways.get(gw)?.mode === "relay") {
      if (this.relay.command(peer, payload, Date.now(), id) < 0) return "refused";
      this.pumpRelay();
    } else {
      // DOWNLINK: the command's id (3 bytes) | the command.
      const body = Buffer.allocUnsafe(COMMAND_HEAD + payload.length);
      body.writeUIntBE(id, 0, COMMAND_HEAD);
      body.set(payload, COMMAND_HEAD);
      // A full queue refuses it: it then waits for the device's next reading (as a relay's refusal does), where
      // counted as handed it was marked sent and went again only when the gateway reconnected.
      if (!this.server.send(gw, { kind: KIND_DOWNLINK, device: Buffer.from(peer, "hex"), payload: body })) return "refused";
    }
    this.metrics.message("down", this.gateways.get(gw)?.mode ?? "terminate", payload.length);
    return "handed";
  }
}

function splitLink(l: string): [string, string] {
  const i = l.indexOf("|");
  return [l.slice(0, i), l.slice(i + 1)];
}
