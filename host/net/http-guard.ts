// Every HTTP listener's guard against the idle, the slow and the many: the controller's admin API (with
// /metrics and /status) and the gateway's metrics server are made here.
//   - headersTimeout: the request line and headers must be in within it. Node (>= 18) counts it from the
//     connection's start, so it is also the deadline of a connection that never sends a request;
//   - requestTimeout: the whole request, body included;
//   - keepAliveTimeout: idle between two requests on one connection;
//   - connectionsCheckingInterval: how often Node looks for the first two (its default, 30 s, lets a
//     slowloris live 40 s past a 10 s headersTimeout);
//   - a cap on connections per source (an IPv4 address, an IPv6 /64) and in all: past it a new connection
//     is closed at once, so one source cannot hold the others' sockets.
// What was closed is counted by reason (over-cap, timeout, malformed) for sesame_listener_dropped_total.
// close() ends every connection without a request in progress at once (Node stops its timeout checks on
// close, so a silent or slow client would otherwise hold the server open) and lets the others finish.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { sourceOf } from "./admission";

export type HttpGuardOptions = {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  checkIntervalMs: number;
  maxPerSource: number;
  maxConnections: number;
};

export const HTTP_GUARD: HttpGuardOptions = {
  headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, checkIntervalMs: 1_000, maxPerSource: 32, maxConnections: 1024,
};

export type HttpDropped = { "over-cap": number; timeout: number; malformed: number };

export type GuardedServer = { server: Server; dropped: HttpDropped; close(): Promise<void> };

const RESPONSES: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n",
  HPE_HEADER_OVERFLOW: "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n",
};
const BAD_REQUEST = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";

export function createGuardedServer(handler: (req: IncomingMessage, res: ServerResponse) => void, options: Partial<HttpGuardOptions> = {}): GuardedServer {
  const o = { ...HTTP_GUARD, ...options };
  const dropped: HttpDropped = { "over-cap": 0, timeout: 0, malformed: 0 };
  const server = createServer({ connectionsCheckingInterval: o.checkIntervalMs }, handler);
  server.headersTimeout = o.headersTimeoutMs;
  server.requestTimeout = o.requestTimeoutMs;
  server.keepAliveTimeout = o.keepAliveTimeoutMs;
  server.maxConnections = o.maxConnections;
  server.on("drop", () => dropped["over-cap"]++);
  const perSource = new Map<string, number>();
  const serving = new WeakSet<Socket>(); // a request was read whole and is not answered yet
  const sockets = new Set<Socket>();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    serving.add(req.socket);
    res.once("close", () => serving.delete(req.socket));
  });
  server.on("connection", (socket: Socket) => {
    const source = sourceOf(socket.remoteAddress);
    const n = (perSource.get(source) ?? 0) + 1;
    if (n > o.maxPerSource) {
      dropped["over-cap"]++;
      return void socket.destroy();
    }
    perSource.set(source, n);
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      const left = (perSource.get(source) ?? 1) - 1;
      if (left > 0) perSource.set(source, left);
      else perSource.delete(source);
    });
  });
  // Node's own answer to a client error, counted: a listener here replaces Node's default.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === "ECONNRESET") return void socket.destroy();
    if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") dropped.timeout++;
    else dropped.malformed++;
    if (socket.writable && socket.bytesWritten === 0) socket.write(RESPONSES[err.code ?? ""] ?? BAD_REQUEST);
    socket.destroy();
  });
  const close = () => new Promise<void>((done) => {
    server.close(() => done());
    for (const s of sockets) if (!serving.has(s)) s.destroy();
  });
  return { server, dropped, close };
}
