// The embedded MQTT broker: aedes (MQTT 3.1.1, in-memory) on a TCP port, so `npm start` needs nothing
// installed. A real deployment may point Delivery at its own broker instead (Mosquitto, EMQX, HiveMQ) by URL.
//
// No anonymous door: every client logs in. The controller's own client uses a credential made at each start
// and held only in memory (controllerLogin), over an in-memory connection (connectInProcess); applications use the credentials of the admin API
// (./mqtt-credentials.ts), each scoped to devices and to read, command or both (./mqtt-acl.ts). Before aedes
// sees a byte (./mqtt-guard.ts): an address whose failed logins emptied its bucket is cut at once, connections
// not yet authenticated are bounded per address and in total, and a packet announced larger than
// maxPacketBytes cuts its connection. A client that does not send CONNECT in time is cut by aedes.
// What the broker keeps is bounded: no retained messages (refused), no sessions for absent clients (every
// session is clean), an idle client times out (its keepalive, at most keepaliveMaxSec).
// A refused publish disconnects the client: MQTT 3.1.1 has no reason code on PUBLISH, aedes can only accept
// or disconnect, and a disconnect is what the application notices. Every refusal is counted in
// sesame_mqtt_refused_total{what, reason} and logged (capped per 10 s).
import { Aedes, type Client } from "aedes";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import type { Duplex } from "node:stream";
import type { AddressInfo, Server, Socket } from "node:net";
import { LimitedWarnings, silentLogger } from "../telemetry/log";
import type { Logger } from "../telemetry/log";
import type { Metrics } from "../telemetry/metrics";
import { MqttAcl, type MqttIdentity } from "./mqtt-acl";
import { ConnectGate, duplexPair, GuardedConnection, type GateLimits } from "./mqtt-guard";
import { hashMqttPassword, newMqttPassword, verifyMqttPassword } from "./mqtt-password";
import { DEFAULT_PREFIX, topicsFor } from "./mqtt-topics";

export const DEFAULT_MQTT_PORT = 1883;

/** Where application logins are checked: the controller's store (MqttCredentials) in practice. */
export interface MqttLogins {
  login(username: string, password: Uint8Array): Promise<MqttIdentity | undefined>;
  onRevoke(cb: (username: string) => void): () => void;
  revokedAmong(usernames: string[]): Promise<string[]>;
}

export type BrokerLimits = GateLimits & {
  /** The largest MQTT packet, header included. The largest legitimate one is a 4095-byte command in hex (~9 KB). */
  maxPacketBytes: number;
  connectTimeoutMs: number;
  /** Authenticated clients at once. */
  maxClients: number;
  /** A client asking for no keepalive, or a longer one, gets this (seconds): silent that long x 1.5, it is cut. */
  keepaliveMaxSec: number;
  /** How often live clients' credentials are checked against the store (revoked by another controller). */
  recheckMs: number;
};

export const DEFAULT_BROKER_LIMITS: BrokerLimits = {
  maxPacketBytes: 16 * 1024, connectTimeoutMs: 10_000, maxClients: 1000, keepaliveMaxSec: 3600, recheckMs: 5000,
  pendingPerAddress: 16, pendingTotal: 256, failures: { burst: 10, perSecond: 1 / 6 },
};

export type EmbeddedBrokerOptions = {
  /** TCP port (default 1883; 0 picks a free port, read it from `port` after start). */
  port?: number;
  host?: string;
  /** Application credentials; without them only the controller's own client gets in. */
  logins?: MqttLogins;
  prefix?: string;
  limits?: Partial<BrokerLimits>;
  /**
   * The controller login's password. Default: a new random one for each broker, which the Delivery that
   * runs this broker uses; give one when a client elsewhere logs in as the controller by URL.
   */
  controllerPassword?: string;
  metrics?: Metrics;
  log?: Logger;
};

const CONTROLLER_USER = "sesame-controller";

export class EmbeddedBroker {
  /** The controller's own login, made for this run and never stored. */
  readonly controllerLogin: { username: string; password: string };
  readonly host: string;
  readonly limits: BrokerLimits;
  readonly stats = { refused: 0 };
  private readonly controllerHash: string;
  private aedes: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly identities = new WeakMap<Client, MqttIdentity>();
  private readonly byUser = new Map<string, Set<Client>>();
  private readonly acl: MqttAcl;
  private readonly gate: ConnectGate;
  private boundPort: number | undefined;
  private readonly wantPort: number;
  private readonly log: Logger;
  private readonly warnings: LimitedWarnings;
  private stopRevokes: (() => void) | undefined;
  private recheck: NodeJS.Timeout | undefined;

  constructor(private readonly opts: EmbeddedBrokerOptions = {}) {
    this.host = opts.host ?? "127.0.0.1";
    this.wantPort = opts.port ?? DEFAULT_MQTT_PORT;
    if (!Number.isInteger(this.wantPort) || this.wantPort < 0 || this.wantPort > 65535) {
      throw new RangeError(`MQTT port must be an integer 0..65535 (0 = any free port), not ${String(opts.port)}`);
    }
    this.limits = { ...DEFAULT_BROKER_LIMITS, ...opts.limits };
    this.controllerLogin = { username: CONTROLLER_USER, password: opts.controllerPassword ?? newMqttPassword() };
    this.controllerHash = hashMqttPassword(this.controllerLogin.password);
    this.acl = new MqttAcl(topicsFor(opts.prefix ?? DEFAULT_PREFIX));
    this.gate = new ConnectGate(this.limits);
    this.log = (opts.log ?? silentLogger()).child("mqtt-broker");
    this.warnings = new LimitedWarnings(this.log);
  }

  /** Listens; resolves with the port. A port in use is a clear error, not a crash. */
  async start(): Promise<number> {
    if (this.server !== undefined) return this.port;
    const aedes = await Aedes.createBroker({
      connectTimeout: this.limits.connectTimeoutMs,
      maxInflightInbound: 16,
      drainTimeout: 10_000,
      preConnect: (_client, packet, done) => {
        // No session outlives its connection: nothing is queued for an absent client.
        packet.clean = true;
        if (!packet.keepalive || packet.keepalive > this.limits.keepaliveMaxSec) packet.keepalive = this.limits.keepaliveMaxSec;
        done(null, true);
      },
      authenticate: (client, username, password, done) => {
        this.authenticate(client, username, password).then(
          (code) => (code === 0 ? done(null, true) : done(Object.assign(new Error("refused"), { returnCode: code }), false)),
          (err: unknown) => {
            this.log.error("MQTT login check failed", { error: err });
            done(Object.assign(new Error("server unavailable"), { returnCode: 3 }), false);
          },
        );
      },
      authorizePublish: (client, packet, done) => {
        const who = client === null ? undefined : this.identities.get(client);
        const why = this.acl.publishRefusal(who, packet.topic, packet.retain);
        if (why === undefined) return done(null);
        this.refused("publish", why, { user: who?.username, topic: packet.topic.slice(0, 200), retain: packet.retain });
        done(new Error(`publish to ${packet.topic} refused (${why})`));
      },
      authorizeSubscribe: (client, sub, done) => {
        if (this.acl.maySubscribe(this.identities.get(client), sub.topic)) return done(null, sub);
        this.refused("subscribe", "not-allowed", { user: this.identities.get(client)?.username, filter: sub.topic.slice(0, 200) });
        done(null, null);
      },
      authorizeForward: (client, packet) => (this.acl.mayReceive(this.identities.get(client), packet.topic) ? packet : null),
    });
    aedes.on("clientError", (client, err) => this.log.debug("client error", { client: client?.id, error: err }));
    aedes.on("connectionError", (_client, err) => {
      if (/connect did not arrive in time/.test(err.message)) this.refused("connect", "timeout", {});
      else this.log.debug("connection error", { error: err });
    });
    const server = createServer((socket) => this.accept(aedes, socket));
    server.maxConnections = this.limits.maxClients + this.limits.pendingTotal;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(this.wantPort, this.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      const e = err as NodeJS.ErrnoException;
      if (e.code === "EADDRINUSE") throw new Error(`MQTT port ${this.wantPort} on ${this.host} is in use (another broker?); choose another port, 0 picks a free one`);
      if (e.code === "EACCES") throw new Error(`not allowed to listen on MQTT port ${this.wantPort} on ${this.host}; use a port above 1023`);
      throw err;
    }
    server.on("error", (err) => this.log.error("listener error", { error: err }));
    this.aedes = aedes;
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.stopRevokes = this.opts.logins?.onRevoke((username) => this.disconnect(username, "revoked"));
    this.recheck = setInterval(() => void this.recheckLogins(), this.limits.recheckMs);
    this.recheck.unref();
    this.log.info("embedded MQTT broker listening", { host: this.host, port: this.boundPort });
    return this.boundPort;
  }

  private accept(aedes: Aedes, socket: Socket): void {
    const address = socket.remoteAddress ?? "unknown";
    const ticket = this.gate.admit(address);
    if (typeof ticket === "string") {
      this.refused("connect", ticket, { remote: address });
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.setNoDelay(true);
    const conn = new GuardedConnection(socket, this.limits.maxPacketBytes, ticket, (problem) => {
      const client = conn.client as Client | undefined;
      this.refused("packet", problem, { remote: address, user: client && this.identities.get(client)?.username, max: this.limits.maxPacketBytes });
    });
    aedes.handle(conn);
  }

  /** A connection to this broker for the controller's own client, in memory: see duplexPair(). */
  connectInProcess(): Duplex {
    const [client, broker] = duplexPair();
    // Called from the client's reconnect timer: a stopped broker is a failed connection, not a throw.
    if (this.aedes === undefined) process.nextTick(() => client.destroy(new Error("embedded MQTT broker stopped")));
    else this.aedes.handle(broker);
    return client;
  }

  /** 0 to let the client in, else the CONNACK return code that refuses it. */
  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<number> {
    // In-process connections are the controller's (connectInProcess); only network ones pass the door.
    const conn = client.conn instanceof GuardedConnection ? client.conn : undefined;
    const address = conn?.remoteAddress ?? "in-process";
    const fail = (code: number, reason: string) => {
      if (conn !== undefined) this.gate.failed(address);
      this.refused("connect", reason, { remote: address, user: username?.slice(0, 64) });
      return code;
    };
    // 5 "not authorized" for no credentials at all, as Mosquitto answers with allow_anonymous false.
    if (username === undefined || password === undefined) return fail(5, "anonymous");
    if (conn !== undefined && !this.gate.mayTry(address)) {
      this.refused("connect", "throttled", { remote: address });
      return 5;
    }
    if (this.clientCount() >= this.limits.maxClients) {
      this.refused("connect", "full", { remote: address });
      return 3;
    }
    const who: MqttIdentity | undefined = username === CONTROLLER_USER
      ? (verifyMqttPassword(password, this.controllerHash) ? { kind: "controller", username } : undefined)
      : await this.opts.logins?.login(username, password);
    if (who === undefined) return fail(4, "bad-credentials");
    // A client id names one identity's session: another credential may not take it over (and cut its client).
    const holder = (this.aedes as unknown as { clients: Record<string, Client> } | undefined)?.clients[client.id];
    if (holder !== undefined && holder !== client && this.identities.get(holder)?.username !== username) return fail(2, "client-id-taken");
    if (client.closed) return 5;
    this.identities.set(client, who);
    let mine = this.byUser.get(username);
    if (mine === undefined) this.byUser.set(username, (mine = new Set()));
    mine.add(client);
    client.conn.once("close", () => {
      mine.delete(client);
      if (mine.size === 0 && this.byUser.get(username) === mine) this.byUser.delete(username);
    });
    conn?.authenticated();
    this.log.debug("MQTT client logged in", { user: username, client: client.id, remote: address });
    return 0;
  }

  /** Cuts every live client of `username` (its credential was revoked); returns how many. */
  disconnect(username: string, why: string): number {
    const clients = [...(this.byUser.get(username) ?? [])];
    for (const c of clients) c.close();
    this.byUser.delete(username);
    if (clients.length > 0) this.log.info("MQTT clients disconnected", { user: username, clients: clients.length, reason: why });
    return clients.length;
  }

  private async recheckLogins(): Promise<void> {
    const users = [...this.byUser.keys()].filter((u) => u !== CONTROLLER_USER);
    if (users.length === 0 || this.opts.logins === undefined) return;
    try {
      for (const u of await this.opts.logins.revokedAmong(users)) this.disconnect(u, "revoked");
    } catch (err) {
      this.warnings.warn("checking MQTT credentials failed", { error: err });
    }
  }

  private refused(what: "connect" | "publish" | "subscribe" | "packet", reason: string, fields: Record<string, unknown>): void {
    this.stats.refused++;
    this.opts.metrics?.mqttRefused(what, reason);
    this.warnings.warn(`MQTT ${what} refused`, { reason, ...fields });
  }

  private clientCount(): number {
    let n = 0;
    for (const s of this.byUser.values()) n += s.size;
    return n;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** The port listened on; throws before start(). */
  get port(): number {
    if (this.boundPort === undefined) throw new Error("embedded MQTT broker not started: call start() first");
    return this.boundPort;
  }

  get url(): string {
    return `mqtt://${this.host.includes(":") ? `[${this.host}]` : this.host}:${this.port}`;
  }

  get clients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** Closes every client connection and the listener. Safe to call twice. */
  async stop(): Promise<void> {
    const { server, aedes } = this;
    if (server === undefined || aedes === undefined) return;
    this.server = undefined;
    this.aedes = undefined;
    this.stopRevokes?.();
    clearInterval(this.recheck);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
    this.log.info("embedded MQTT broker stopped", { port: this.boundPort });
  }
}
