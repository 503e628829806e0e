// /metrics over HTTP. `metricsHandler` can be mounted on any node:http server (the admin API routes GET
// /metrics to it); `serveMetrics` is a small server of its own for a process that has no other.
// Bound to 127.0.0.1 by default: metrics describe traffic, and exposure beyond the host is a deployment choice.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "./metrics";

/** Serves the registry's text on GET and HEAD; 405 otherwise. Never throws into the server. */
export function metricsHandler(metrics: Metrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain; charset=utf-8", allow: "GET, HEAD" });
      res.end("method not allowed: use GET /metrics\n");
      return;
    }
    metrics.text().then(
      (body) => {
        res.writeHead(200, { "content-type": metrics.contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end(`metrics collection failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  };
}

export type MetricsServer = { port: number; url: string; server: Server; close(): Promise<void> };

/**
 * A server answering /metrics, and /status with the status line's numbers (metrics.snapshot() and
 * whatever `status` adds), 404 elsewhere. Port 0 picks a free port; the chosen one is returned.
 */
export function serveMetrics(metrics: Metrics, opts: { port?: number; host?: string; status?: () => Record<string, unknown> } = {}): Promise<MetricsServer> {
  const host = opts.host ?? "127.0.0.1";
  const handler = metricsHandler(metrics);
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") return handler(req, res);
    if (path === "/status") {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      return res.end(JSON.stringify({ ...metrics.snapshot(), ...opts.status?.() }));
    }
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("not found: metrics are at /metrics, the status line's numbers at /status\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(err.code === "EADDRINUSE" ? new Error(`metrics port ${opts.port} on ${host} is in use; choose another port (0 picks a free one)`) : err);
    });
    server.listen(opts.port ?? 9464, host, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port, server, url: `http://${host}:${port}/metrics`,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}
