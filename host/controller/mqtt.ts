// Application delivery over MQTT: decrypted device messages go out on <prefix>/devices/<id>/up, session events
// on .../events, and commands arriving on .../down are handed to the controller (topics: ./mqtt-topics.ts).
//
// The broker is either the embedded one (./mqtt-broker.ts, the default, nothing to install) or an external
// one by URL. Either way the connection is a client connection that logs in and reconnects by itself: to the
// embedded broker with the login it makes for this run, to an external one with the URL's username and
// password, over TLS (mqtts://) verified against a given CA, with a client certificate if the broker wants one.
// Backpressure: at most `maxInflight` publishes wait for the broker's PUBACK; beyond that, and whenever the
// broker is away, messages wait in a bounded queue that drops its oldest entry when full (counted, logged,
// exported). Memory therefore stays bounded through any outage; nothing is silently lost without a count.
// Commands go to ./mqtt-commands.ts, and the broker gets a command's PUBACK only once its handler answered.
// On an external broker the controller subscribes to the commands with an MQTT 5 shared subscription
// ($share/<group>/...): with several controllers, the broker gives each command to one of them.
import { randomBytes } from "node:crypto";
import { connect, MqttClient } from "mqtt";
import type { IClientOptions } from "mqtt";
import { LimitedWarnings, silentLogger } from "../telemetry/log";
import type { Logger } from "../telemetry/log";
import type { Metrics } from "../telemetry/metrics";
import { EmbeddedBroker, type BrokerLimits, type MqttLogins } from "./mqtt-broker";
import { DropOldestQueue } from "./mqtt-queue";
import { checkBrokerUrl, printableUrl, type BrokerTls } from "./mqtt-url";
import { CommandIntake, type CommandHandler } from "./mqtt-commands";
import { DEFAULT_MAX_COMMAND_BYTES, DEFAULT_PREFIX, deviceIdProblem, eventBody, topicsFor, uplinkBody } from "./mqtt-topics";
import type { EventDetails, Topics, Uplink } from "./mqtt-topics";

export type { CommandHandler, CommandVerdict } from "./mqtt-commands";

export type BrokerChoice =
  | { kind: "embedded"; port?: number; host?: string; logins?: MqttLogins; limits?: Partial<BrokerLimits> }
  /** shareGroup: the MQTT 5 shared subscription group commands are taken in (default "sesame"). */
  | { kind: "external"; url: string; username?: string; password?: string; tls?: BrokerTls; shareGroup?: string };

export type DeliveryOptions = {
  /** Default: the embedded broker on 127.0.0.1:1883. */
  broker?: BrokerChoice;
  /** Topic prefix, default "sesame". */
  prefix?: string;
  onCommand?: CommandHandler;
  /**
   * Told of each reading other clients (the cluster's other controllers) publish, as the broker has it: an
   * MQTT 5 no-local subscription to the up topics, made only when this is given and the broker speaks MQTT 5.
   */
  onOthersReading?: (device: string, seq: number) => void;
  clientId?: string;
  /** Messages kept while the broker is away or slow (default 10,000); the oldest go first. */
  maxQueue?: number;
  /** Publishes awaiting PUBACK at once (default 256). */
  maxInflight?: number;
  /** Delay between reconnect attempts (default 1000 ms). */
  reconnectMs?: number;
  /** How long start() tries to reach the broker before it gives up with a reason (default 10 s). */
  connectTimeoutMs?: number;
  maxCommandBytes?: number;
  metrics?: Metrics;
  log?: Logger;
  now?: () => number;
};

/** `done`: told once whether the broker took the message (PUBACK), or that it was dropped or failed. */
type Outgoing = { topic: string; body: string; kind: "up" | "event"; done?: (ok: boolean) => void };


export class Delivery {
  readonly topics: Topics;
  /** The embedded broker, when this Delivery runs one. */
  readonly broker: EmbeddedBroker | undefined;
  readonly stats = { published: 0, publishFailures: 0, dropped: 0, commands: 0, malformed: 0, rejected: 0, failed: 0, connects: 0 };

  private client: MqttClient | undefined;
  private readonly queue: DropOldestQueue<Outgoing>;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private stopping = false;
  private started = false;
  private stopped: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  /** Set while start() waits for the first subscription to be acknowledged. */
  private onReady: ((err?: Error) => void) | undefined;
  private readonly log: Logger;
  private readonly choice: BrokerChoice;
  /** Warnings under a flood (an application spamming bad commands, a long outage) are capped. */
  private readonly warnings: LimitedWarnings;
  private readonly commands: CommandIntake;
  /** The shared subscription group on an external broker (MQTT 5), "" on the embedded one. */
  private readonly shareGroup: string;
  /** The protocol the broker took: 5 on an external broker that speaks it, else 4 (3.1.1). */
  private protocol: 4 | 5 = 4;

  constructor(private readonly opts: DeliveryOptions = {}) {
    this.topics = topicsFor(opts.prefix ?? DEFAULT_PREFIX);
    this.choice = opts.broker ?? { kind: "embedded" };
    this.queue = new DropOldestQueue(opts.maxQueue ?? 10_000);
    this.log = (opts.log ?? silentLogger()).child("mqtt");
    this.warnings = new LimitedWarnings(this.log, () => this.now());
    if (this.choice.kind === "embedded") {
      const { port, host, logins, limits } = this.choice;
      this.broker = new EmbeddedBroker({ port, host, logins, limits, prefix: opts.prefix, metrics: opts.metrics, log: opts.log });
    } else {
      checkBrokerUrl(this.choice.url, this.choice.tls);
    }
    this.shareGroup = this.choice.kind === "external" ? this.choice.shareGroup ?? "sesame" : "";
    if (this.choice.kind === "external" && !/^[A-Za-z0-9_-]{1,64}$/.test(this.shareGroup)) throw new RangeError(`shareGroup ${JSON.stringify(this.shareGroup)}: letters, digits, _ and - only`);
    this.commands = new CommandIntake({
      topics: this.topics, maxCommandBytes: opts.maxCommandBytes ?? DEFAULT_MAX_COMMAND_BYTES, handler: opts.onCommand, stats: this.stats,
      metrics: opts.metrics, log: this.log, warnings: this.warnings, event: (device, event, reason) => this.event(device, event, reason),
    });
    opts.metrics?.watchQueue("mqtt-out", () => this.queue.length);
    for (const reason of ["queue-full", "stopped"] as const) opts.metrics?.mqttDrop(reason, 0); // at 0 from the start: see watchQueue
  }

  /** Where messages go, printable (a password in the URL is masked). */
  get brokerUrl(): string {
    if (this.choice.kind === "embedded") return this.broker?.running ? this.broker.url : `mqtt://${this.choice.host ?? "127.0.0.1"}:${this.choice.port ?? 1883}`;
    return printableUrl(this.choice.url);
  }

  /**
   * What the controller subscribes to for commands: on MQTT 5, a shared subscription, so that of several
   * controllers one takes each command. The embedded broker (aedes, MQTT 3.1.1) serves one controller: a
   * plain subscription there, and on an external broker that speaks no MQTT 5 (start() warns).
   */
  get downFilter(): string {
    return this.protocol === 5 ? `$share/${this.shareGroup}/${this.topics.downFilter}` : this.topics.downFilter;
  }

  get connected(): boolean {
    return this.client?.connected === true;
  }

  /** Messages waiting for the broker (not counting the ones in flight). */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Starts the embedded broker if configured, connects, subscribes to the down topics. Resolves when commands
   * can arrive; rejects with what to fix when the broker cannot be reached in connectTimeoutMs or refuses us.
   * Messages published before start() wait in the queue.
   */
  start(): Promise<void> {
    this.starting ??= this.connectFirst().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async connectFirst(): Promise<void> {
    if (this.client !== undefined) return;
    this.stopping = false;
    this.stopped = undefined;
    let url: string, auth: { username?: string; password?: string } & BrokerTls = {};
    if (this.choice.kind === "embedded") {
      await this.broker!.start();
      url = this.broker!.url;
      auth = { ...this.broker!.controllerLogin };
    } else {
      const u = new URL(this.choice.url);
      auth = {
        username: this.choice.username ?? (u.username ? decodeURIComponent(u.username) : undefined),
        password: this.choice.password ?? (u.password ? decodeURIComponent(u.password) : undefined),
        ...this.choice.tls,
      };
      u.username = "";
      u.password = "";
      url = u.toString();
    }
    const options: IClientOptions = {
      clientId: this.opts.clientId ?? `sesame-controller-${randomBytes(4).toString("hex")}`,
      ...auth,
      clean: true,
      reconnectPeriod: this.opts.reconnectMs ?? 1000,
      connectTimeout: Math.min(this.opts.connectTimeoutMs ?? 10_000, 30_000),
      // We subscribe on every connect ourselves (below), so the client's own resubscription is not needed.
      resubscribe: false,
    };
    // MQTT 5 on an external broker, for the shared subscription; the embedded aedes speaks 3.1.1.
    this.protocol = this.choice.kind === "external" ? 5 : 4;
    let client: MqttClient;
    for (;;) {
      client = this.newClient(url, { ...options, protocolVersion: this.protocol });
      const err = await this.firstConnect(client).then(() => undefined, (e: Error) => e);
      if (err === undefined) break;
      this.client = undefined;
      client.end(true);
      if (err instanceof NoMqtt5 && this.protocol === 5) {
        this.protocol = 4;
        this.log.warn("the MQTT broker speaks no MQTT 5: commands are taken with a plain subscription, so run one controller on it (with several, each would take every command)", { broker: this.brokerUrl });
        continue;
      }
      if (this.broker?.running) await this.broker.stop();
      throw err;
    }
    this.started = true;
    // After a first success, a refusal (broker restarted with other settings) is retried, not fatal.
    client.options.reconnectOnConnackError = true;
  }

  private newClient(url: string, options: IClientOptions): MqttClient {
    // The embedded broker is reached in memory, not through its network door (which bounds and throttles).
    const broker = this.broker;
    const client = broker === undefined ? connect(url, options) : new MqttClient(() => broker.connectInProcess(), options);
    this.client = client;
    // Called for every PUBLISH; for QoS 1 the client sends the PUBACK when `done` is called, so a command's
    // PUBACK waits for its handler. (The client takes its next packet only then: a command's commit holds
    // this connection up for a few milliseconds; commands are few.)
    client.handleMessage = (packet, done) => {
      if (this.othersReading(packet.topic, packet.payload as Buffer)) return done();
      void this.commands.handle(packet.topic, packet.payload as Buffer).finally(() => done());
    };
    client.on("connect", () => this.onConnect(client));
    client.on("close", () => this.onClose());
    // Always listened to: an 'error' with no listener would throw out of the client and take the process down.
    client.on("error", (err) => {
      if (this.started) this.warnings.warn("MQTT client error", { error: err, broker: this.brokerUrl });
    });
    return client;
  }

  private firstConnect(client: MqttClient): Promise<void> {
    const limit = this.opts.connectTimeoutMs ?? 10_000;
    return new Promise<void>((resolve, reject) => {
      let last: Error | undefined;
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.onReady = undefined;
        client.off("error", onError);
        if (err) reject(err);
        else resolve();
      };
      const ok = (err?: Error) => done(err);
      const onError = (err: Error & { code?: unknown }) => {
        last = err;
        // A broker that speaks no MQTT 5 refuses the version: 1 in a 3.1.1 CONNACK, 132 in an MQTT 5 one.
        if ((err.code === 1 || err.code === 132) && client.options.protocolVersion === 5) done(new NoMqtt5(err.message));
        // A refusal (bad credentials, not authorised) will not fix itself by retrying.
        else if (typeof err.code === "number") done(new Error(`MQTT broker ${this.brokerUrl} refused the connection: ${err.message}; check the username and password`));
        // Neither will a certificate this side does not trust (node:tls error codes: CERT_*, *_CERT_*, ERR_TLS_*).
        else if (typeof err.code === "string" && /CERT|ERR_TLS/.test(err.code)) {
          done(new Error(`MQTT broker ${this.brokerUrl} has a certificate this controller does not trust: ${err.message}; give the CA that signed it with --mqtt-ca, and connect by the name it was issued for`));
        }
      };
      const timer = setTimeout(() => {
        const why = last ? `: ${last.message}` : "";
        done(new Error(`could not connect to the MQTT broker at ${this.brokerUrl} within ${limit} ms${why}; check that it is running and the URL`));
      }, limit);
      // Ready means subscribed: a command published right after start() resolves must not be missed.
      this.onReady = ok;
      client.on("error", onError);
    });
  }

  private onConnect(client: MqttClient): void {
    this.stats.connects++;
    this.opts.metrics?.mqttConnected(true);
    this.log.info(this.stats.connects === 1 ? "connected to MQTT broker" : "reconnected to MQTT broker", { broker: this.brokerUrl, queued: this.queue.length, dropped: this.queue.dropped });
    const watch = this.opts.onOthersReading;
    if (watch !== undefined && this.protocol === 5) {
      client.subscribe(this.topics.upFilter, { qos: 0, nl: true }, (err, granted) => {
        if (err ?? granted?.some((g) => g.qos >= 128)) this.log.error("watching the other controllers' readings failed: a reading taken over from a dead one may reach MQTT twice", { filter: this.topics.upFilter, error: err ?? "refused (ACL?)" });
      });
    }
    client.subscribe(this.downFilter, { qos: 1 }, (err, granted) => {
      // A broker's ACL refuses a subscription with a failure code in the SUBACK (128 and up) rather than an error.
      const problem = err ?? (granted?.some((g) => g.qos >= 128) ? new Error("the broker refused the subscription (ACL?)") : undefined);
      if (problem) this.log.error("subscribing to commands failed", { filter: this.downFilter, error: problem });
      this.onReady?.(problem && new Error(`subscribing to ${this.downFilter} on ${this.brokerUrl} failed: ${problem.message}`));
    });
    this.pump();
  }

  private onClose(): void {
    if (this.stopping) return;
    this.opts.metrics?.mqttConnected(false);
    this.warnings.warn("MQTT broker connection lost; queueing messages", { broker: this.brokerUrl, queued: this.queue.length, maxQueue: this.queue.capacity });
  }

  // ---- outgoing ----

  /**
   * One decrypted device message to <prefix>/devices/<device>/up (QoS 1). `done(true)` once the broker has
   * it (PUBACK), `done(false)` if it was dropped or the publish failed: the caller may try again.
   */
  publishUplink(u: Uplink, done?: (ok: boolean) => void): void {
    this.checkDevice(u.device);
    this.enqueue({ topic: this.topics.up(u.device), body: uplinkBody(u, this.now()), kind: "up", done });
  }

  /** A session event (session-opened, session-closed, revoked, ...) to <prefix>/devices/<device>/events. */
  publishEvent(device: string, event: string, details?: EventDetails): void {
    this.checkDevice(device);
    this.enqueue({ topic: this.topics.events(device), body: eventBody(device, event, details, this.now()), kind: "event" });
  }

  /** Resolves true once nothing is queued or in flight, false if that takes longer than `timeoutMs`. */
  flush(timeoutMs = 5000): Promise<boolean> {
    if (this.idle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private checkDevice(device: string): void {
    const problem = deviceIdProblem(device);
    if (problem !== undefined) throw new TypeError(`cannot publish: ${problem}`);
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private enqueue(m: Outgoing): void {
    if (this.stopping) {
      this.drop("stopped", 1);
      m.done?.(false);
      return;
    }
    if (this.client?.connected === true && this.queue.length === 0 && this.inflight < (this.opts.maxInflight ?? 256)) {
      this.send(this.client, m);
      return;
    }
    const evicted = this.queue.push(m);
    if (evicted !== undefined) {
      this.drop("queue-full", 1);
      evicted.done?.(false);
    }
  }

  private pump(): void {
    const client = this.client;
    const max = this.opts.maxInflight ?? 256;
    while (client !== undefined && client.connected && this.inflight < max && this.queue.length > 0) this.send(client, this.queue.shift()!);
    if (this.idle()) {
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
    }
  }

  private send(client: MqttClient, m: Outgoing): void {
    this.inflight++;
    client.publish(m.topic, m.body, { qos: 1 }, (err) => {
      this.inflight--;
      if (err) {
        this.stats.publishFailures++;
        this.opts.metrics?.mqttPublishFailure();
        this.warnings.warn("MQTT publish failed", { topic: m.topic, error: err });
      } else {
        this.stats.published++;
        this.opts.metrics?.mqttPublish(m.kind);
      }
      m.done?.(!err);
      this.pump();
    });
  }

  /** A reading another controller published (true), told to onOthersReading; anything else is not one (false). */
  private othersReading(topic: string, body: Buffer): boolean {
    const t = this.topics.parse(topic);
    if (t?.kind !== "up") return false;
    try {
      const seq = (JSON.parse(body.toString("utf8")) as { seq?: unknown }).seq;
      if (typeof seq === "number") this.opts.onOthersReading?.(t.device, seq);
    } catch {
      // Not one of ours: nothing to learn from it.
    }
    return true;
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.inflight === 0;
  }

  private drop(reason: "queue-full" | "stopped", n: number): void {
    this.stats.dropped += n;
    this.opts.metrics?.mqttDrop(reason, n);
    this.warnings.warn("outgoing MQTT message dropped", { reason, dropped: this.stats.dropped, maxQueue: this.queue.capacity });
  }

  /** Tells the application why its command went nowhere (best effort: it must not loop or throw). */
  private event(device: string, event: string, reason: string): void {
    try {
      this.publishEvent(device, event, { reason });
    } catch {
      // An id that cannot be a topic level never reaches here (deviceOfDown checked it); nothing to add.
    }
  }

  // ---- shutdown ----

  /** Sends what it can within `drainMs`, counts the rest as dropped, disconnects, stops the embedded broker. */
  stop(opts: { drainMs?: number } = {}): Promise<void> {
    this.stopped ??= this.shutdown(opts.drainMs ?? 2000);
    return this.stopped;
  }

  private async shutdown(drainMs: number): Promise<void> {
    if (this.starting !== undefined) await this.starting.catch(() => undefined);
    const client = this.client;
    if (client?.connected === true) await this.flush(drainMs);
    this.stopping = true;
    this.started = false;
    const left = this.queue.clear();
    if (left > 0) this.drop("stopped", left);
    if (client !== undefined) {
      // A clean DISCONNECT when nothing is in flight; otherwise (or if the broker does not answer in 1 s) cut.
      const force = !client.connected || this.inflight > 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => client.end(true, {}, () => resolve()), 1000);
        client.end(force, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.client = undefined;
    this.opts.metrics?.mqttConnected(false);
    if (this.broker?.running) await this.broker.stop();
    this.log.info("MQTT delivery stopped", { published: this.stats.published, dropped: this.stats.dropped });
  }
}

/** The broker refused MQTT 5 (start() tries again with 3.1.1). */
class NoMqtt5 extends Error {}
