// The embedded MQTT broker: aedes (MQTT 3.1.1, in-memory) on a TCP port, so `npm start` needs nothing
// installed and users can still watch with `mosquitto_sub -h 127.0.0.1 -p <port> -t 'sesame/#' -v`.
// A real deployment points Delivery at its own broker instead (Mosquitto, EMQX, HiveMQ) by URL.
// Bound to 127.0.0.1 by default: the embedded broker accepts anonymous clients.
import { Aedes } from "aedes";
import { createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { silentLogger } from "../telemetry/log";
import type { Logger } from "../telemetry/log";

export const DEFAULT_MQTT_PORT = 1883;

export type EmbeddedBrokerOptions = {
  /** TCP port (default 1883; 0 picks a free port, read it from `port` after start). */
  port?: number;
  host?: string;
  log?: Logger;
};

export class EmbeddedBroker {
  private aedes: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private boundPort: number | undefined;
  readonly host: string;
  private readonly wantPort: number;
  private readonly log: Logger;

  constructor(opts: EmbeddedBrokerOptions = {}) {
    this.host = opts.host ?? "127.0.0.1";
    this.wantPort = opts.port ?? DEFAULT_MQTT_PORT;
    if (!Number.isInteger(this.wantPort) || this.wantPort < 0 || this.wantPort > 65535) {
      throw new RangeError(`MQTT port must be an integer 0..65535 (0 = any free port), not ${String(opts.port)}`);
    }
    this.log = (opts.log ?? silentLogger()).child("mqtt-broker");
  }

  /** Listens; resolves with the port. A port in use is a clear error, not a crash. */
  async start(): Promise<number> {
    if (this.server !== undefined) return this.port;
    const aedes = await Aedes.createBroker();
    aedes.on("clientError", (client, err) => this.log.debug("client error", { client: client?.id, error: err }));
    aedes.on("connectionError", (_client, err) => this.log.debug("connection error", { error: err }));
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
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
    if (this.host !== "127.0.0.1" && this.host !== "::1" && this.host !== "localhost") {
      this.log.warn("embedded broker accepts anonymous clients on a non-loopback address", { host: this.host, port: this.boundPort });
    }
    this.log.info("embedded MQTT broker listening", { host: this.host, port: this.boundPort });
    return this.boundPort;
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
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
    this.log.info("embedded MQTT broker stopped", { port: this.boundPort });
  }
}
