// The controller's admin API: HTTP (node:http) with bearer tokens, per-client rate limits and an audit record
// for every call, refused ones included. A request goes through, in order:
//   1. credentials: a valid token always passes (checking one is a hash and a constant-time compare, cheap
//      enough to do for every request, so a flood of bad tokens from an address cannot lock its real admin
//      out); a missing or invalid one costs the caller's address (an IPv6 caller's /64) a token from its
//      bucket (401), or gets 429 when the bucket is empty. Tokens are 256-bit random (sesame token), so the
//      bucket is there to bound the work and the records bad requests cost, not to slow a guesser down;
//   2. the token's own bucket (429 with Retry-After);
//   3. the route (404 unknown path, 405 known path with another method), and whether the caller's
//      credential allows its action (403; ./principal.ts);
//   4. the body (413 too large, 415 not JSON, 400 malformed or invalid, naming the field);
//   5. the handler; then the audit record, then the response. If it cannot be written the caller gets 500:
//      no call goes unrecorded. A successful call is always a row of its own; refused ones are rows up to a
//      rate per source and counted summaries past it (audit-refusals.ts), so a flood cannot grow the log
//      without bound.
// Unauthenticated callers learn nothing about routes (auth comes first) nor why a token failed.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { sourceOf } from "../net/admission";
import { createGuardedServer, type HttpDropped, type HttpGuardOptions } from "../net/http-guard";
import { adminRoutes, type Route, type RouteResult } from "./admin-routes";
import type { AuditOutcome } from "./audit";
import { RefusalAudit, type RefusalLimits } from "./audit-refusals";
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
  limits?: { perToken?: BucketSpec; perAddressFailures?: BucketSpec; maxClients?: number; refusals?: RefusalLimits };
  /** Timeouts and connection caps of the server (host/net/http-guard.ts). */
  http?: Partial<HttpGuardOptions>;
  /** Routes served before the API with their own credentials (/metrics and /status): true if it took the request. */
  telemetry?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Turns a presented credential into a principal; by default `tokens` as admins. */
  credentials?: Credentials;
  /** Routes besides admin-routes.ts's (the fleet and its event stream: live/routes.ts). */
  routes?: Route[];
  /** Served before any credential is asked for (the web console's static files): true if it took the request. */
  pages?: (req: IncomingMessage, res: ServerResponse) => boolean;
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
  /** Connections the server closed before a request was answered, by reason. */
  dropped: HttpDropped;
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
  const routes = [...adminRoutes({ store: opts.store }), ...(opts.routes ?? [])];
  const bodyLimit = opts.bodyLimit ?? 16 * 1024;
  const log = opts.log ?? defaultLog;
  const refusals = new RefusalAudit(opts.store.audit, { limits: opts.limits?.refusals, now: opts.now, log: (level, msg, f) => log({ level, msg, ...f }) });

  /** The caller, or throws 401/429. A valid credential always passes; failures spend the source's bucket. */
  async function authenticate(req: IncomingMessage, source: string): Promise<Principal> {
    const h = req.headers.authorization;
    const m = h === undefined ? null : /^Bearer +(\S+) *$/i.exec(h);
    const p = m === null ? undefined : await credentials(m[1]);
    if (p !== undefined) return p;
    const gate = perAddress.take(source);
    if (!gate.ok) throw new HttpError(429, "rate-limited", "too many failed attempts; retry later", { "Retry-After": String(gate.retryAfterSec) });
    const message = h === undefined || h.trim() === "" ? "missing bearer token" : "invalid bearer token";
    throw new HttpError(401, "denied", message, { "WWW-Authenticate": 'Bearer realm="sesame"' });
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
    const source = sourceOf(remote);
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
      const principal = await authenticate(req, source);
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
    let recorded: "row" | "counted" = "row";
    try {
      const entry = { actor, action, target, outcome, detail };
      if (outcome === "ok") await opts.store.audit.append(entry);
      else recorded = await refusals.record(actor ?? source, entry);
    } catch (e) {
      log({ level: "error", msg: "audit append failed; refusing the response", action, error: String(e) });
      ({ status, body, headers } = { status: 500, body: { error: "internal", message: "audit log unavailable" }, headers: {} });
      stream = undefined;
    }
    // A counted refusal is logged with its summary, so a flood does not flood the log either.
    if (recorded === "row") log({ level: outcome === "ok" ? "info" : "warn", msg: "admin call", actor, action, target, outcome, status });
    if (stream !== undefined) await stream(res);
    else sendJson(res, status, body, headers);
  }

  const { server, dropped, close } = createGuardedServer((req, res) => {
    if (opts.telemetry?.(req, res)) return;
    if (opts.pages?.(req, res)) return;
    handle(req, res).catch((e) => {
      log({ level: "error", msg: "admin handler crashed", error: String(e) });
      if (!res.headersSent) sendJson(res, 500, { error: "internal", message: "internal error" });
      else res.destroy();
    });
  }, opts.http);

  return {
    server,
    dropped,
    listen: (port, host = "127.0.0.1") =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async () => {
      await close();
      refusals.stop();
      // The counts of the window still open: written now, or logged as lost with the reason.
      await refusals.flush(true).catch((e) => log({ level: "error", msg: "audit summary write failed at close", error: String(e) }));
    },
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
