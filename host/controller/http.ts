// Small HTTP helpers for the admin API (node:http, no framework): errors that carry their status and
// audit outcome, a bounded JSON body reader, and JSON responses that are never cached (they can carry a
// device's credentials).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuditOutcome } from "./audit";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: AuditOutcome,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HttpError(400, "bad-request", message);

/** The body as JSON (undefined when empty). 413 past `limit` bytes, 415 if it is not JSON, 400 if it does not parse. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > limit) throw new HttpError(413, "bad-request", `body too large: at most ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new HttpError(413, "bad-request", `body too large: at most ${limit} bytes`);
    chunks.push(c);
  }
  if (size === 0) return undefined;
  const type = String(req.headers["content-type"] ?? "");
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new HttpError(415, "bad-request", "send the body as Content-Type: application/json");
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (e) {
    throw badRequest(`body is not valid JSON: ${(e as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(text);
}
