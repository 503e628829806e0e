// /metrics and /status over HTTP, behind a bearer token, the way Prometheus scrapes a protected target
// (`authorization: Bearer <token>`; `bearer_token_file` or `authorization.credentials_file` in its scrape
// config). `telemetryRoutes` can be mounted on any node:http server (the admin API takes it); `serveMetrics`
// is a guarded server of its own (host/net/http-guard.ts) for a process that has no other.
// Tokens are configured as {id, sha256} and checked as the admin API's are (host/controller/tokens.ts).
// A valid token is always served: the check is one SHA-256, and locking a scraper out because another
// client at its address guesses (the same host, the same NAT) would be a door for that client to close.
// Failed attempts spend the address's bucket; once it is empty they get 429 with Retry-After and the
// connection is closed, and each is counted (sesame_auth_failures_total{reason="metrics-token"}).
// Bound to 127.0.0.1 by default: metrics describe traffic, and exposure beyond the host is a deployment choice.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { RateLimiter, type BucketSpec } from "../controller/ratelimit";
import { TokenVerifier, type AdminToken } from "../controller/tokens";
import { sourceOf } from "../net/admission";
import { createGuardedServer, type HttpDropped, type HttpGuardOptions } from "../net/http-guard";
import type { Metrics } from "./metrics";

/** Failed token attempts per address: 10 at once, then one every 6 s (the admin API's figures). */
export const METRICS_FAILURES: BucketSpec = { burst: 10, perSecond: 1 / 6 };

export type TelemetryOptions = {
  metrics: Metrics;
  /** What /status adds to metrics.snapshot(). */
  status?: () => Record<string, unknown>;
  /** Token lists any one of which lets a caller in (the controller: its metrics tokens and its admin tokens). */
  tokens: AdminToken[][];
  failures?: BucketSpec;
};

const text = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(body);
};

/** Serves GET and HEAD on /metrics and /status to a valid bearer token; returns false for any other path. */
export function telemetryRoutes(opts: TelemetryOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const verifiers = opts.tokens.map((t) => new TokenVerifier(t));
  const failures = new RateLimiter(opts.failures ?? METRICS_FAILURES);
  const authorized = (req: IncomingMessage, res: ServerResponse): boolean => {
    const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? "");
    if (m !== null && verifiers.some((v) => v.verify(m[1]) !== undefined)) return true;
    opts.metrics.authFailure("metrics-token");
    const spent = failures.take(sourceOf(req.socket.remoteAddress));
    if (!spent.ok) {
      text(res, 429, "too many failed attempts; retry later\n", { "retry-after": String(spent.retryAfterSec), connection: "close" });
    } else {
      text(res, 401, `${m === null ? "missing" : "invalid"} bearer token: send authorization: Bearer <metrics token>\n`, { "www-authenticate": 'Bearer realm="sesame metrics"' });
    }
    return false;
  };
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" && path !== "/status") return false;
    if (!authorized(req, res)) return true;
    if (req.method !== "GET" && req.method !== "HEAD") {
      text(res, 405, `method not allowed: use GET ${path}\n`, { allow: "GET, HEAD" });
      return true;
    }
    const body = path === "/status"
      ? Promise.resolve({ type: "application/json", text: JSON.stringify({ ...opts.metrics.snapshot(), ...opts.status?.() }) })
      : opts.metrics.text().then((t) => ({ type: opts.metrics.contentType, text: t }));
    body.then(
      (b) => {
        res.writeHead(200, { "content-type": b.type, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : b.text);
      },
      (err: unknown) => text(res, 500, `metrics collection failed: ${err instanceof Error ? err.message : String(err)}\n`),
    );
    return true;
  };
}

export type MetricsServer = { port: number; url: string; server: Server; dropped: HttpDropped; close(): Promise<void> };

/** A guarded server answering /metrics and /status (telemetryRoutes), 404 elsewhere. Port 0 picks a free port. */
export function serveMetrics(opts: TelemetryOptions & { port?: number; host?: string; http?: Partial<HttpGuardOptions> }): Promise<MetricsServer> {
  const host = opts.host ?? "127.0.0.1";
  const routes = telemetryRoutes(opts);
  const { server, dropped, close } = createGuardedServer((req, res) => {
    if (!routes(req, res)) text(res, 404, "not found: metrics are at /metrics, the status line's numbers at /status\n");
  }, opts.http);
  opts.metrics.watchListener("metrics", () => ({ ...dropped }));
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(err.code === "EADDRINUSE" ? new Error(`metrics port ${opts.port} on ${host} is in use; choose another port (0 picks a free one)`) : err);
    });
    server.listen(opts.port ?? 9464, host, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port, server, dropped, close, url: `http://${host}:${port}/metrics`,
      });
    });
  });
}
