// The controller's admin API: HTTP (node:http) with bearer tokens, per-client rate limits and an audit row
// for every call, refused ones included. A request goes through, in order:
//   1. credentials: a missing or invalid token costs the caller's address a token from its bucket (401);
//      an address whose bucket is empty gets 429 before its token is even checked;
//   2. the token's own bucket (429 with Retry-After);
//   3. the route (404 unknown path, 405 known path with another method), and whether the caller's
//      credential allows its action (403; ./principal.ts);
//   4. the body (413 too large, 415 not JSON, 400 malformed or invalid, naming the field);
//   5. the handler; then the audit row, then the response. If the audit row cannot be written the caller
//      gets 500: no call goes unrecorded.
// Unauthenticated callers learn nothing about routes (auth comes first) nor why a token failed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { adminRoutes, type Route, type RouteResult } from "./admin-routes";
import type { AuditOutcome } from "./audit";
import { HttpError, readJson, sendJson } from "./http";
import { RateLimiter, type BucketSpec } from "./ratelimit";
import { adminCredentials, allows, type Credentials, type Principal } from "./principal";
import { RegistryError } from "./registry";
import type { ControllerStore } from "./store";
import type { AdminToken } from "./tokens";

export type AdminLog = (entry: { level: "info" | "warn" | "error"; msg: string; [k: string]: unknown }) => void;

export type AdminOptions = {
  store: ControllerStore;
  /** {id, sha256 of the token}; the tokens themselves are never given to the controller. */
  tokens: AdminToken[];
  /** Turns a presented credential into a principal; by default `tokens` as admins. */
  credentials?: Credentials;
  /** Routes besides admin-routes.ts's (the fleet and its event stream: live/routes.ts). */
  routes?: Route[];
  /** Served before any credential is asked for (the web console's static files): true if it took the request. */
  pages?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Where a generated master key is saved (and a supplied one copied), e.g. .sesame/keys. */
  masterKeyDir?: string;
  limits?: { perToken?: BucketSpec; perAddressFailures?: BucketSpec; maxClients?: number };
  /** Largest accepted request body, bytes. */
  bodyLimit?: number;
  /** Structured log lines (JSON-ready; never a token, key or config). Defaults to errors on stderr. */
  log?: AdminLog;
  now?: () => number;
};

export const DEFAULT_LIMITS = {
  perToken: { burst: 30, perSecond: 10 },
  perAddressFailures: { burst: 10, perSecond: 1 / 6 },
};

export type AdminApi = {
  server: Server;
  listen(port: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
};

const defaultLog: AdminLog = (e) => {
  if (e.level === "error") process.stderr.write(JSON.stringify({ at: new Date().toISOString(), component: "admin", ...e }) + "\n");
};

const STATUS_CODES: Record<AuditOutcome, string> = {
  ok: "ok", denied: "unauthorized", "bad-request": "bad-request", "not-found": "not-found", "rate-limited": "rate-limited", error: "internal",
};

export function createAdminApi(opts: AdminOptions): AdminApi {
  const credentials = opts.credentials ?? adminCredentials(opts.tokens);
  const maxClients = opts.limits?.maxClients ?? 10_000;
  const perToken = new RateLimiter(opts.limits?.perToken ?? DEFAULT_LIMITS.perToken, maxClients, opts.now);
  const perAddress = new RateLimiter(opts.limits?.perAddressFailures ?? DEFAULT_LIMITS.perAddressFailures, maxClients, opts.now);
  const routes = [...adminRoutes({ store: opts.store, masterKeyDir: opts.masterKeyDir }), ...(opts.routes ?? [])];
  const bodyLimit = opts.bodyLimit ?? 16 * 1024;
  const log = opts.log ?? defaultLog;

  /** The caller, or throws 401/429. */
  async function authenticate(req: IncomingMessage, remote: string): Promise<Principal> {
    const gate = perAddress.peek(remote);
    if (!gate.ok) throw new HttpError(429, "rate-limited", "too many failed attempts; retry later", { "Retry-After": String(gate.retryAfterSec) });
    const h = req.headers.authorization;
    const fail = (message: string) => {
      perAddress.take(remote);
      return new HttpError(401, "denied", message, { "WWW-Authenticate": 'Bearer realm="sesame"' });
    };
    if (h === undefined || h.trim() === "") throw fail("missing bearer token");
    const m = /^Bearer +(\S+) *$/i.exec(h);
    const p = m === null ? undefined : await credentials(m[1]);
    if (p === undefined) throw fail("invalid bearer token");
    return p;
  }

  function route(method: string, path: string): { r: Route; params: string[] } {
    let allowed: string[] = [];
    for (const r of routes) {
      const m = r.path.exec(path);
      if (m === null) continue;
      if (r.method === method) return { r, params: m.slice(1).map(decodeParam) };
      allowed.push(r.method);
    }
    if (allowed.length > 0) {
      allowed = [...new Set(allowed)];
      throw new HttpError(405, "bad-request", `method ${method} not allowed here; use ${allowed.join(", ")}`, { Allow: allowed.join(", ") });
    }
    throw new HttpError(404, "not-found", `no such route: ${path}`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const remote = req.socket.remoteAddress ?? "unknown";
    const method = req.method ?? "GET";
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://admin.invalid");
    } catch {
      url = new URL("http://admin.invalid/");
    }
    let actor: string | null = null;
    let action = `${method} ${url.pathname}`.slice(0, 120);
    let target: string | null = null;
    const detail: Record<string, unknown> = { remote };
    let status: number;
    let outcome: AuditOutcome;
    let body: unknown;
    let headers: Record<string, string> = {};
    let stream: RouteResult["stream"];
    try {
      const principal = await authenticate(req, remote);
      actor = principal.actor;
      const limit = perToken.take(actor);
      if (!limit.ok) throw new HttpError(429, "rate-limited", "rate limit exceeded for this token", { "Retry-After": String(limit.retryAfterSec) });
      const { r, params } = route(method, url.pathname);
      action = r.action;
      if (!allows(principal, r.action)) throw new HttpError(403, "denied", `this credential may not ${r.action}`);
      const reqBody = method === "POST" ? await readJson(req, bodyLimit) : undefined;
      const out = await r.handle({
        principal, params, query: url.searchParams, body: reqBody,
        target: (t) => void (target = t),
        note: (d) => void Object.assign(detail, d),
      });
      status = out.status;
      outcome = "ok";
      body = out.body;
      stream = out.stream;
    } catch (e) {
      ({ status, outcome, body, headers } = refusal(e));
      detail.reason = (body as { message: string }).message;
      if (status === 413) headers.Connection = "close"; // do not read the rest of an oversized body
      if (outcome === "error") log({ level: "error", msg: "admin call failed", action, error: String((e as Error)?.stack ?? e) });
    }
    detail.status = status;
    detail.ms = Date.now() - started;
    try {
      await opts.store.audit.append({ actor, action, target, outcome, detail });
    } catch (e) {
      log({ level: "error", msg: "audit append failed; refusing the response", action, error: String(e) });
      ({ status, body, headers } = { status: 500, body: { error: "internal", message: "audit log unavailable" }, headers: {} });
      stream = undefined;
    }
    log({ level: outcome === "ok" ? "info" : "warn", msg: "admin call", actor, action, target, outcome, status });
    if (stream !== undefined) await stream(res);
    else sendJson(res, status, body, headers);
  }

  const server = createServer((req, res) => {
    if (opts.pages?.(req, res)) return;
    handle(req, res).catch((e) => {
      log({ level: "error", msg: "admin handler crashed", error: String(e) });
      if (!res.headersSent) sendJson(res, 500, { error: "internal", message: "internal error" });
      else res.destroy();
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  return {
    server,
    listen: (port, host = "127.0.0.1") =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function decodeParam(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, "bad-request", "malformed percent-encoding in the path");
  }
}

/** The response for a refused or failed call; internal errors say nothing about their cause. */
function refusal(e: unknown): { status: number; outcome: AuditOutcome; body: unknown; headers: Record<string, string> } {
  if (e instanceof HttpError) return { status: e.status, outcome: e.outcome, body: { error: STATUS_CODES[e.outcome], message: e.message }, headers: { ...e.headers } };
  if (e instanceof RegistryError) {
    const status = e.code === "not-found" ? 404 : e.code === "conflict" ? 409 : 400;
    const outcome: AuditOutcome = e.code === "not-found" ? "not-found" : "bad-request";
    return { status, outcome, body: { error: e.code, message: e.message }, headers: {} };
  }
  return { status: 500, outcome: "error", body: { error: "internal", message: "internal error" }, headers: {} };
}
