// Master keys: the 256-bit keys that wrap every long-term key the controller stores. One comes from a key
// file (32 raw bytes or 64 hex characters), a directory of key files, or the SESAME_MASTER_KEY environment
// variable (hex): see keydir.ts for where keys are looked for and how a rotation adds one. The key bytes live only
// inside an OpenSSL KeyObject held in a private field; printing, JSON-encoding or inspecting a MasterKey
// shows its fingerprint, nothing else.
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { writePrivateFile } from "./private-files";

export const MASTER_KEY_SIZE = 32;
const NONCE_SIZE = 12;
const TAG_SIZE = 16;

export class MasterKeyError extends Error {}

export class MasterKey {
  /** sha256("sesame master key" || 0 || key), first 16 bytes, hex: names the key without revealing it. */
  readonly fingerprint: string;
  readonly #key: KeyObject;

  constructor(raw: Uint8Array) {
    if (raw.length !== MASTER_KEY_SIZE) throw new MasterKeyError(`master key must be ${MASTER_KEY_SIZE} bytes, got ${raw.length}`);
    this.#key = createSecretKey(Buffer.from(raw));
    this.fingerprint = createHash("sha256").update("sesame master key\0").update(raw).digest("hex").slice(0, 32);
  }

  static generate(): MasterKey {
    const raw = randomBytes(MASTER_KEY_SIZE);
    const k = new MasterKey(raw);
    raw.fill(0);
    return k;
  }

  /** AES-256-GCM under this key: nonce (12, random) || ciphertext || tag (16). `aad` binds it to its row. */
  wrap(plain: Uint8Array, aad: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_SIZE);
    const c = createCipheriv("aes-256-gcm", this.#key, nonce, { authTagLength: TAG_SIZE });
    c.setAAD(aad);
    return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
  }

  /** The inverse of wrap; throws MasterKeyError when the tag fails (wrong key, wrong row, altered bytes). */
  unwrap(wrapped: Uint8Array, aad: Uint8Array): Uint8Array {
    if (wrapped.length < NONCE_SIZE + TAG_SIZE) throw new MasterKeyError("wrapped key too short");
    const w = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength);
    const d = createDecipheriv("aes-256-gcm", this.#key, w.subarray(0, NONCE_SIZE), { authTagLength: TAG_SIZE });
    d.setAAD(aad);
    d.setAuthTag(w.subarray(w.length - TAG_SIZE));
    try {
      return new Uint8Array(Buffer.concat([d.update(w.subarray(NONCE_SIZE, w.length - TAG_SIZE)), d.final()]));
    } catch {
      throw new MasterKeyError(`unwrap failed under master key ${this.fingerprint}: wrong key, or the wrapped key belongs to another row`);
    }
  }

  /** Writes the key as 64 hex characters to `path`, readable by its owner only, atomically (private-files.ts). */
  writeTo(path: string, opts = { overwrite: false }): void {
    const raw = this.#key.export();
    try {
      writePrivateFile(path, raw.toString("hex") + "\n", opts);
    } finally {
      raw.fill(0);
    }
  }

  toString(): string {
    return `MasterKey(${this.fingerprint})`;
  }
  toJSON(): { fingerprint: string } {
    return { fingerprint: this.fingerprint };
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

/** A key from text (64 hex characters, surrounding whitespace ignored) or 32 raw bytes. `what` names the source. */
export function parseMasterKey(data: Uint8Array, what: string): MasterKey {
  if (data.length === MASTER_KEY_SIZE) return new MasterKey(data);
  const text = Buffer.from(data).toString("latin1").trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new MasterKey(Buffer.from(text, "hex"));
  // Never echo the content: it may be a key with a typo.
  throw new MasterKeyError(`${what}: expected 32 raw bytes or 64 hex characters, found ${data.length} bytes that are neither`);
}

export function readMasterKeyFile(path: string): MasterKey {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new MasterKeyError(`master key file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return parseMasterKey(data, `master key file ${path}`);
  } finally {
    data.fill(0);
  }
}
