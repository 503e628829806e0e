// What a log line may contain. Logs leave the machine (Fluent Bit, Elasticsearch), so the rule is enforced
// here, once, rather than trusted to every call site:
//   - a field whose NAME looks secret (key, psk, secret, token, password, master, payload, plaintext, ...)
//     is replaced by "[redacted]", whatever its value;
//   - bytes (Buffer, Uint8Array, any typed array, ArrayBuffer, DataView) are never printed, only their length,
//     so a key or a decrypted payload passed under an innocent name still cannot reach the log;
//   - a URL's password (mqtt://user:pass@host) is masked inside any string;
//   - depth, array length, key count and string length are bounded, cycles are cut: a log call cannot hang
//     or print megabytes.

export const REDACTED = "[redacted]";

/** Names that look like secrets or application data. Matched anywhere in the name, case-insensitively. */
const SECRET_NAME = /key|psk|secret|token|passw|pwd|master|payload|plaintext|cleartext|cookie|authori[sz]ation|credential|private|seed|nonce/i;

/** Names that contain a secret-looking word but carry only identifiers or sizes, which operators need. */
const SAFE_NAME = /^(key_?id|kid|key_?epoch|key_?version|keys?_?count|payload_?(bytes|len|length|size)|token_?count)$/i;

const MAX_DEPTH = 6;
const MAX_KEYS = 64;
const MAX_ITEMS = 32;
const MAX_STRING = 2048;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !SAFE_NAME.test(name);
}

const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:@/\s]*):[^@/\s]*@/gi;

function cleanString(s: string): string {
  const masked = s.replace(URL_PASSWORD, `$1:${REDACTED}@`);
  return masked.length > MAX_STRING ? `${masked.slice(0, MAX_STRING)}...[${masked.length} chars]` : masked;
}

function bytesLength(v: unknown): number | undefined {
  if (ArrayBuffer.isView(v)) return v.byteLength;
  if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && v instanceof SharedArrayBuffer)) return v.byteLength;
  return undefined;
}

/** A JSON-safe copy of `value` with the rules above applied. Never throws. */
export function redact(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || value === undefined) return value ?? null;
  switch (typeof value) {
    case "string":
      return cleanString(value);
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "boolean":
      return value;
    case "bigint":
      return value.toString();
    case "symbol":
      return value.toString();
    case "function":
      return "[function]";
  }
  const n = bytesLength(value);
  if (n !== undefined) return `[${n} bytes]`;
  const obj = value as object;
  if (seen.has(obj)) return "[circular]";
  if (depth >= MAX_DEPTH) return "[too deep]";
  seen.add(obj);
  try {
    if (obj instanceof Error) {
      // Name, message and code: enough to act on. Messages are still cleaned (a URL with a password).
      const e = obj as Error & { code?: unknown };
      const out: Record<string, unknown> = { name: e.name, message: cleanString(String(e.message)) };
      if (e.code !== undefined) out.code = redact(e.code, depth + 1, seen);
      return out;
    }
    if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? "Invalid Date" : obj.toISOString();
    if (Array.isArray(obj)) {
      const out = obj.slice(0, MAX_ITEMS).map((v) => redact(v, depth + 1, seen));
      if (obj.length > MAX_ITEMS) out.push(`[${obj.length - MAX_ITEMS} more]`);
      return out;
    }
    if (obj instanceof Map) return redactEntries([...obj.entries()].map(([k, v]) => [String(k), v]), depth, seen);
    if (obj instanceof Set) return redact([...obj], depth, seen);
    return redactEntries(Object.entries(obj), depth, seen);
  } catch {
    // A getter that throws, a proxy that refuses: the log line says so instead of failing the caller.
    return "[unreadable]";
  } finally {
    seen.delete(obj);
  }
}

function redactEntries(entries: [string, unknown][], depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let i = 0;
  for (const [k, v] of entries) {
    if (i++ >= MAX_KEYS) {
      out["[more]"] = entries.length - MAX_KEYS;
      break;
    }
    out[k] = isSecretName(k) ? REDACTED : redact(v, depth + 1, seen);
  }
  return out;
}
