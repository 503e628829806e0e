// The web console's files, served by the controller on the admin API's port: plain HTML, CSS and ES modules
// from ./static (nothing to build), and the QR code encoder from its npm package. They hold no data and
// need no credential; everything the console shows comes from the admin API, which asks for one.
//   - read once at start into memory: a request costs a map lookup, and nothing on disk is reachable by a
//     path the client chooses;
//   - GET and HEAD only; each address gets a token bucket (the admin API's RateLimiter), 429 past it;
//   - a strict Content-Security-Policy: scripts and styles from this origin only (no inline script, no
//     eval), connections to this origin only, no frames, no plugins; the console writes data into the page
//     as text (textContent), never as markup.
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RateLimiter, type BucketSpec } from "../ratelimit";

export const CONSOLE_PATH = "/console/";

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join("; ");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8", ".svg": "image/svg+xml",
};

const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), "static");

type Page = { body: Buffer; type: string };

/** The console's files by URL path. */
export function consoleFiles(dir = STATIC_DIR): Map<string, Page> {
  const pages = new Map<string, Page>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type !== undefined) pages.set(CONSOLE_PATH + name, { body: readFileSync(join(dir, name)), type });
  }
  pages.set(CONSOLE_PATH, pages.get(`${CONSOLE_PATH}index.html`)!);
  // The QR encoder (qrcode-generator: MIT, no dependencies, no network, no eval), as the ES module it ships.
  // Its package exports the ES module beside the CommonJS one that require() resolves.
  const qr = join(dirname(createRequire(import.meta.url).resolve("qrcode-generator")), "qrcode.mjs");
  pages.set(`${CONSOLE_PATH}vendor/qrcode.mjs`, { body: readFileSync(qr), type: TYPES[".mjs"] });
  return pages;
}

export const PAGE_LIMITS: BucketSpec = { burst: 60, perSecond: 10 };

/** A request handler for the console's pages: true if it took the request (its path is the console's or "/"). */
export function consolePages(opts: { limits?: BucketSpec; maxClients?: number; dir?: string } = {}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const pages = consoleFiles(opts.dir);
  const perAddress = new RateLimiter(opts.limits ?? PAGE_LIMITS, opts.maxClients ?? 10_000);
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/" && path !== "/console" && !path.startsWith(CONSOLE_PATH)) return false;
    const headers: Record<string, string> = {
      "Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
      "X-Frame-Options": "DENY", "Cross-Origin-Opener-Policy": "same-origin", "Cache-Control": "no-cache",
    };
    const answer = (status: number, text: string, more: Record<string, string> = {}) => {
      res.writeHead(status, { ...headers, "Content-Type": "text/plain; charset=utf-8", ...more });
      res.end(req.method === "HEAD" ? undefined : text);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      answer(405, "the console's pages are read with GET\n", { Allow: "GET, HEAD" });
      return true;
    }
    const verdict = perAddress.take(req.socket.remoteAddress ?? "unknown");
    if (!verdict.ok) {
      answer(429, "too many requests; retry later\n", { "Retry-After": String(verdict.retryAfterSec) });
      return true;
    }
    if (path === "/" || path === "/console") {
      answer(303, `the console is at ${CONSOLE_PATH}\n`, { Location: CONSOLE_PATH });
      return true;
    }
    const page = pages.get(path);
    if (page === undefined) {
      answer(404, "no such page\n");
      return true;
    }
    res.writeHead(200, { ...headers, "Content-Type": page.type, "Content-Length": String(page.body.length) });
    res.end(req.method === "HEAD" ? undefined : page.body);
    return true;
  };
}
