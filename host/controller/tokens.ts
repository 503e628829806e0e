// Admin API tokens. The controller is configured with {id, sha256 of the token} pairs and never holds a
// token itself; a presented token is hashed and its digest compared with every configured digest in
// constant time (equal-length SHA-256 outputs through timingSafeEqual, no early exit), so neither the
// comparison nor the loop says how close a guess came or which token it resembled.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export type AdminToken = { id: string; sha256: string };

const ID = /^[A-Za-z0-9_.-]{1,64}$/;
const DIGEST = /^[0-9a-f]{64}$/;

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * `bytes` random bytes as base64url, never starting with "-": a secret printed for people to paste after a
 * flag (`--token <it>`, `mosquitto_pub -P <it>`) must not read as an option. Drawn again in the 1 in 64 case;
 * what is left is still uniform over the texts that do not start with "-".
 */
export function randomSecretText(bytes: number): string {
  for (;;) {
    const text = randomBytes(bytes).toString("base64url");
    if (text[0] !== "-") return text;
  }
}

/** A new random token (256 bits, base64url): show it once, configure only its hash. */
export function generateToken(): { token: string; sha256: string } {
  const token = randomSecretText(32);
  return { token, sha256: hashToken(token) };
}

/**
 * "id:sha256hex,id:sha256hex" (e.g. SESAME_ADMIN_TOKENS) or a JSON array of {id, sha256}; `what` names the
 * list in errors (metrics tokens are configured the same way).
 */
export function parseAdminTokens(spec: string, what = "admin tokens"): AdminToken[] {
  const s = spec.trim();
  let list: unknown;
  if (s.startsWith("[")) {
    try {
      list = JSON.parse(s);
    } catch {
      throw new Error(`${what}: not valid JSON`);
    }
  } else {
    list = s === "" ? [] : s.split(",").map((pair) => {
      const i = pair.indexOf(":");
      return i < 0 ? { id: pair.trim() } : { id: pair.slice(0, i).trim(), sha256: pair.slice(i + 1).trim() };
    });
  }
  if (!Array.isArray(list)) throw new Error(`${what}: expected a list of {id, sha256}`);
  return checkTokens(list as AdminToken[], what);
}

export function checkTokens(list: AdminToken[], what = "admin tokens"): AdminToken[] {
  const ids = new Set<string>();
  const digests = new Set<string>();
  return list.map((t, i) => {
    if (typeof t !== "object" || t === null || typeof t.id !== "string" || !ID.test(t.id)) {
      throw new Error(`${what}: entry ${i + 1}: id must be 1-64 characters of A-Z a-z 0-9 _ . -`);
    }
    const d = typeof t.sha256 === "string" ? t.sha256.toLowerCase() : "";
    if (!DIGEST.test(d)) throw new Error(`${what}: ${t.id}: sha256 must be the token's SHA-256 as 64 hex characters (not the token)`);
    if (ids.has(t.id)) throw new Error(`${what}: id ${t.id} appears twice`);
    if (digests.has(d)) throw new Error(`${what}: ${t.id} has the same token as another id`);
    ids.add(t.id);
    digests.add(d);
    return { id: t.id, sha256: d };
  });
}

export class TokenVerifier {
  private readonly tokens: { id: string; digest: Buffer }[];

  constructor(tokens: AdminToken[]) {
    this.tokens = checkTokens(tokens).map((t) => ({ id: t.id, digest: Buffer.from(t.sha256, "hex") }));
  }

  /** The id of the token `presented` is, or undefined. */
  verify(presented: string): string | undefined {
    const digest = createHash("sha256").update(presented, "utf8").digest();
    let found: string | undefined;
    for (const t of this.tokens) if (timingSafeEqual(digest, t.digest)) found = t.id;
    return found;
  }
}
