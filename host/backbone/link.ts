// The backbone link between a gateway and the controller: BackboneClient on the gateway, BackboneServer on
// the controller. Each TCP connection is one handshake and one extreme-format session (connection.ts);
// what outlives connections, the numbered queue and the acknowledgements, is the peer's (peer.ts). Device
// sessions are not tied to the backbone at all: a reconnect changes nothing for them.
//
// Client states (one timer: the reconnect delay):
//
//   IDLE --start()--> CONNECTING --ready--> OPEN --connection closed--> BACKOFF --delay--> CONNECTING
//   any --close()--> CLOSED
//
// The reconnect delay doubles from backoffInitialMs up to backoffMaxMs with every failed attempt (reset by
// a connection that became ready), and is drawn uniformly from its upper half (jitter), so gateways that
// lost the controller together do not all come back in the same instant.
//
// A client may know several controllers (a cluster sharing one backbone key): it is connected to one at a
// time, and each attempt after a connection closed or failed goes to the next one in the list, so a
// controller that dies costs one short delay. It stays where it got in rather than returning to the first:
// a move costs a relay gateway's devices a new handshake each, and is worth making only when forced.
import { EventEmitter, once } from "node:events";
import * as net from "node:net";
import type { KeyPair } from "../../firmware/crypto/provider";
import { BackboneConnection, ConnectionOptions } from "./connection";
import { AppMessage } from "./frame";
import { Admission, AdmissionLimits } from "../net/admission";
import { controllerEndpointConfig, GatewayIdentity, GatewayLookup, gatewayEndpointConfig } from "./handshake";
import { BackbonePeer, PeerOptions, peerOptions, PeerStats } from "./peer";

export const CLIENT_IDLE = 0;
export const CLIENT_CONNECTING = 1;
export const CLIENT_OPEN = 2;
export const CLIENT_BACKOFF = 3;
export const CLIENT_CLOSED = 4;

export type BackoffOptions = { backoffInitialMs: number; backoffMaxMs: number };
export const DEFAULT_BACKOFF: BackoffOptions = { backoffInitialMs: 100, backoffMaxMs: 10_000 };

export type HostPort = { host: string; port: number };

export type BackboneClientOptions = Partial<PeerOptions> & Partial<BackoffOptions> & {
  host: string;
  port: number;
  /** More controllers with the same key, tried in turn after host:port. */
  fallbacks?: HostPort[];
  identity: GatewayIdentity;
  /** The controller's static X25519 public key (pinned). */
  controllerKey: Uint8Array;
  connection?: Partial<ConnectionOptions>;
};

export type ClientStats = PeerStats & { attempts: number; lastClose: string | undefined };

/** Resolves when the socket has closed, however (events.once would reject on its 'error'). */
const closed = (s: net.Socket) => new Promise<void>((resolve) => s.once("close", () => resolve()));

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");

/**
 * The gateway's end. Events: 'message' (m, seq) for DOWNLINK / RELAY_DOWN / ..., 'connected',
 * 'disconnected' (reason), 'drain' (send() may be called again after it returned false), 'acked' (base:
 * the controller has durably taken every message numbered below it).
 */
export class BackboneClient extends EventEmitter {
  state = CLIENT_IDLE;
  readonly peer: BackbonePeer;
  private readonly opts: BackboneClientOptions & BackoffOptions;
  private failures = 0; // attempts in a row that did not become ready
  private attempts = 0;
  private lastClose: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private socket: net.Socket | undefined;
  private readonly controllers: HostPort[];
  private current = 0;

  constructor(opts: BackboneClientOptions) {
    super();
    this.opts = { ...DEFAULT_BACKOFF, ...opts };
    this.controllers = [{ host: opts.host, port: opts.port }, ...(opts.fallbacks ?? [])];
    gatewayEndpointConfig(opts.identity, opts.controllerKey); // fails early on a malformed identity
    this.peer = new BackbonePeer(peerOptions(opts));
    this.peer.on("message", (m: AppMessage, seq: number) => this.emit("message", m, seq));
    this.peer.on("drain", () => this.emit("drain"));
    this.peer.on("acked", (base: number) => this.emit("acked", base));
    this.peer.on("up", () => {
      this.state = CLIENT_OPEN;
      this.failures = 0;
      this.emit("connected");
    });
  }

  /** Connects, and keeps reconnecting until close(). */
  start(): this {
    if (this.state === CLIENT_IDLE) this.connect();
    return this;
  }

  /** Queues a message for the controller; false when the queue is full (wait for 'drain'). */
  send(m: AppMessage): boolean {
    if (this.state === CLIENT_CLOSED) return false;
    return this.peer.send(m);
  }

  /** With autoAck off: the gateway has durably taken the controller's messages numbered below `taken`. */
  ack(taken: number, run?: string): void {
    this.peer.ack(taken, run);
  }

  get connected(): boolean { return this.state === CLIENT_OPEN && this.peer.connected; }

  /** The controller this client is connected or connecting to. */
  get controller(): HostPort { return this.controllers[this.current]; }

  get stats(): ClientStats {
    return { ...this.peer.stats, attempts: this.attempts, lastClose: this.lastClose };
  }

  /** Stops reconnecting and ends the session with a CLOSE record. Queued messages are dropped. */
  async close(): Promise<void> {
    if (this.state === CLIENT_CLOSED) return;
    this.state = CLIENT_CLOSED;
    clearTimeout(this.timer);
    const s = this.socket;
    this.peer.close("client closed");
    if (s !== undefined && !s.destroyed) {
      s.end();
      await closed(s);
    }
  }

  private connect(): void {
    this.state = CLIENT_CONNECTING;
    this.attempts++;
    const socket = net.connect(this.controller.port, this.controller.host);
    this.socket = socket;
    const conn = new BackboneConnection(socket, gatewayEndpointConfig(this.opts.identity, this.opts.controllerKey), this.opts.connection);
    this.peer.attach(conn);
    conn.once("close", (reason: string) => {
      this.lastClose = reason;
      if (this.state === CLIENT_CLOSED) return;
      if (this.state === CLIENT_OPEN) this.emit("disconnected", reason);
      else this.failures++;
      this.current = (this.current + 1) % this.controllers.length;
      this.backoff();
    });
  }

  private backoff(): void {
    this.state = CLIENT_BACKOFF;
    const ceiling = Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** Math.min(this.failures, 30));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.timer = setTimeout(() => {
      if (this.state === CLIENT_BACKOFF) this.connect();
    }, delay);
  }
}

export type BackboneServerOptions = Partial<PeerOptions> & {
  keys: KeyPair;
  /** The pinned gateways: kid -> static public key. */
  gateways: GatewayLookup;
  /** Bounds on connections still handshaking (see host/net/admission.ts). */
  admission?: Partial<AdmissionLimits>;
  connection?: Partial<ConnectionOptions>;
};

/**
 * 64 handshakes at once, 8 from one source. A gateway answers the controller's R1 within a round trip
 * and three X25519, so one that has not within 2 s is not a gateway worth waiting for.
 */
export const BACKBONE_ADMISSION: AdmissionLimits = { maxPending: 64, perSource: 8, silentMs: 2_000, knownSources: 1024 };

/**
 * The controller's end: accepts gateways, one session each (a new connection from a gateway replaces its
 * old one). Gateways are named by their kid in hex. Events: 'message' (m, gateway, seq), 'gateway-up'
 * (gateway), 'gateway-down' (gateway, reason), 'drain' (gateway).
 */
export class BackboneServer extends EventEmitter {
  readonly peers = new Map<string, BackbonePeer>();
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly admission: Admission;
  private failedHandshakes = 0;

  constructor(private readonly opts: BackboneServerOptions) {
    super();
    this.admission = new Admission({ ...BACKBONE_ADMISSION, ...opts.admission });
    this.server = net.createServer((s) => this.accept(s));
  }

  /**
   * Connections admitted, refused (no slot could be freed for them), evicted (the oldest silent one, to make
   * room for a newcomer), silent (said nothing acceptable in time), and handshakes that failed.
   */
  get stats(): { accepted: number; refused: number; evicted: number; silent: number; failedHandshakes: number } {
    const a = this.admission.stats;
    return { accepted: a.admitted, refused: a.refused, evicted: a.evicted, silent: a.silent, failedHandshakes: this.failedHandshakes };
  }

  /** Connections still in their handshake. */
  get handshaking(): number {
    return this.admission.size;
  }

  async listen(port = 0, host = "127.0.0.1"): Promise<net.AddressInfo> {
    this.server.listen(port, host);
    await once(this.server, "listening");
    return this.server.address() as net.AddressInfo;
  }

  /** Queues a message for a gateway (connected or not); false when its queue is full (wait for 'drain'). */
  send(gateway: string, m: AppMessage): boolean {
    return this.peerFor(gateway).send(m);
  }

  /** With autoAck off: the controller has durably taken the gateway's messages numbered below `taken`. */
  ack(gateway: string, taken: number, run?: string): void {
    this.peers.get(gateway)?.ack(taken, run);
  }

  /** Ends a gateway's connection (its queue stays); it reconnects unless its key is no longer pinned. */
  disconnect(gateway: string, reason = "disconnected by the controller"): void {
    this.peers.get(gateway)?.close(reason);
  }

  /** Gateways with a ready connection. */
  connected(): string[] {
    return [...this.peers].filter(([, p]) => p.connected).map(([id]) => id);
  }

  async close(): Promise<void> {
    const closing = once(this.server, "close");
    this.server.close();
    for (const p of this.peers.values()) p.close("controller closed");
    for (const s of this.sockets) if (!s.destroyed) s.end();
    await Promise.all([...this.sockets].map((s) => (s.destroyed ? undefined : closed(s))));
    await closing;
  }

  private peerFor(gateway: string): BackbonePeer {
    let p = this.peers.get(gateway);
    if (p !== undefined) return p;
    const kid = Buffer.from(gateway, "hex");
    if (kid.length !== 4 || hex(kid) !== gateway || this.opts.gateways(kid) === undefined) throw new RangeError(`unknown gateway ${gateway}`);
    p = new BackbonePeer(peerOptions(this.opts));
    p.on("message", (m: AppMessage, seq: number) => this.emit("message", m, gateway, seq));
    p.on("up", () => this.emit("gateway-up", gateway));
    p.on("down", (reason: string) => this.emit("gateway-down", gateway, reason));
    p.on("drain", () => this.emit("drain", gateway));
    this.peers.set(gateway, p);
    return p;
  }

  private accept(socket: net.Socket): void {
    // Evicted or silent: no error packet (there is no session yet), and no lingering socket either.
    const ticket = this.admission.admit(socket.remoteAddress, () => socket.destroy());
    if (ticket === undefined) return void socket.destroy();
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    const conn = new BackboneConnection(socket, controllerEndpointConfig(this.opts.keys, this.opts.gateways), this.opts.connection);
    let pending = true;
    conn.once("answered", () => this.admission.spoke(ticket));
    conn.once("ready", () => {
      pending = false;
      let peer: BackbonePeer;
      try {
        peer = this.peerFor(hex(conn.peer!));
      } catch {
        this.admission.settle(ticket, false);
        return conn.abort("gateway no longer pinned"); // its key was withdrawn during the handshake
      }
      this.admission.settle(ticket, true);
      peer.attach(conn);
    });
    conn.once("close", () => {
      if (!pending) return;
      pending = false;
      this.failedHandshakes++;
      this.admission.settle(ticket, false);
    });
  }
}
