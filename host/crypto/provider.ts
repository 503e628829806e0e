// The host's CryptoProvider: node:crypto for everything (OpenSSL's X25519, SHA-256 and AES-CCM), so the
// gateway runs the same handshake code as the boards at native speed.
import * as crypto from "node:crypto";
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, randomBytes, randomFillSync, type KeyObject } from "node:crypto";
import { equalCT } from "../../firmware/bytes";
import type { CryptoProvider } from "../../firmware/crypto/provider";
import type { KeyPair } from "../../firmware/handshake/dh";
import { nodeCcm } from "./aead";

// Importing a key into OpenSSL can cost more than the X25519 itself, so private keys are imported once per
// scalar buffer and remembered. Both kinds come in through JWK, the fast path (a PKCS#8 DER import costs
// about ten times as much in OpenSSL 3). A private key's JWK must carry some "x", which the import does not
// use: OpenSSL derives the public key from "d".
const privateKeys = new WeakMap<Uint8Array, KeyObject>();
const ANY_X = Buffer.alloc(32, 9).toString("base64url");

export function x25519PrivateKey(s: Uint8Array): KeyObject {
  let k = privateKeys.get(s);
  if (!k) {
    k = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString("base64url"), x: ANY_X }, format: "jwk" });
    privateKeys.set(s, k);
  }
  return k;
}

// Public keys are found by their array first: a handshake passes the same array for both X25519 calls on a
// peer's ephemeral key, and a registry hands out the same array for a static key every time, so the second
// call costs neither an import nor a base64url encoding. The bytes are compared before the key is used: an
// array written to after its import (a reused buffer) is looked up by its new bytes, never by the old key.
const publicByArray = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>();

// Static public keys (a pinned gateway key, a registered device's key) come back in every handshake, also
// in arrays of their own, so their imported KeyObjects are kept by value too, from their second import on:
// ephemeral keys never come back, and each one kept would outlive the young generation (a KeyObject that
// survives a scavenge is copied, then promoted, then freed by a full collection). An import is remembered
// by a fingerprint of its bytes in a small table (a false match only keeps one more key in the cache).
const publicKeys = new Map<string, KeyObject>();
const PUBLIC_CACHE = 4096;
const importedOnce = new Int32Array(PUBLIC_CACHE);

/** True when u's bytes were imported before (as far as the table remembers); remembers them otherwise. */
function importedBefore(u: Uint8Array): boolean {
  if (u.length < 6) return false;
  const slot = (u[4] | (u[5] << 8)) & (PUBLIC_CACHE - 1);
  const print = u[0] | (u[1] << 8) | (u[2] << 16) | (u[3] << 24) | 1; // never 0, the empty slot
  if (importedOnce[slot] === print) return true;
  importedOnce[slot] = print;
  return false;
}

/** How many public keys are kept by value (for tests: ephemeral keys are not). */
export function x25519PublicKeysKept(): number {
  return publicKeys.size;
}

export function x25519PublicKey(u: Uint8Array): KeyObject {
  const known = publicByArray.get(u);
  if (known !== undefined && equalCT(known.bytes, u)) return known.key;
  const x = Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString("base64url");
  let k = publicKeys.get(x);
  if (!k) {
    k = createPublicKey({ key: { kty: "OKP", crv: "X25519", x }, format: "jwk" });
    if (importedBefore(u)) {
      if (publicKeys.size >= PUBLIC_CACHE) publicKeys.delete(publicKeys.keys().next().value as string);
      publicKeys.set(x, k);
    }
  }
  publicByArray.set(u, { bytes: Uint8Array.from(u), key: k });
  return k;
}

/** X25519(scalar, u) with OpenSSL. OpenSSL refuses an all-zero result; RFC 7748 returns it, so do we. */
export function nodeX25519(s: Uint8Array, u: Uint8Array): Uint8Array {
  try {
    return diffieHellman({ privateKey: x25519PrivateKey(s), publicKey: x25519PublicKey(u) });
  } catch {
    return new Uint8Array(32);
  }
}

// Scalars are drawn from the CSPRNG SCALARS_PER_DRAW at a time: one randomBytes call costs about as much as
// hashing a key pair's worth of transcript. Each scalar's bytes are wiped from the pool as it is handed out.
const SCALARS_PER_DRAW = 64;
const scalarPool = Buffer.alloc(32 * SCALARS_PER_DRAW);
let scalarsLeft = 0;

function randomScalarBytes(): Uint8Array {
  if (scalarsLeft === 0) {
    randomFillSync(scalarPool);
    scalarsLeft = SCALARS_PER_DRAW;
  }
  scalarsLeft--;
  const from = scalarsLeft * 32;
  const s = new Uint8Array(32);
  s.set(scalarPool.subarray(from, from + 32));
  scalarPool.fill(0, from, from + 32);
  return s;
}

/**
 * A fresh X25519 key pair: a random scalar (clamped, as OpenSSL's keygen leaves it) imported into OpenSSL,
 * which derives the public key, read back from the key's JWK. Not generateKeyPairSync and an export: on
 * Node 20 a JWK export of a key made by generateKeyPairSync can deadlock the process (the export holds the
 * key's mutex while it allocates; a collection at that moment runs the finished keygen job's destructor,
 * which takes the same mutex). One such key pair in some thousands hung the scaling bench for good.
 */
export function nodeKeyPair(): KeyPair {
  const s = randomScalarBytes();
  s[0] &= 248;
  s[31] = (s[31] & 127) | 64;
  const k = x25519PrivateKey(s);
  const S = new Uint8Array(Buffer.from(k.export({ format: "jwk" }).x!, "base64url"));
  return { s, S };
}

// One-shot hashing (Node 20.12 and later): no Hash object, with its native handle, per call.
const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: "buffer") => Buffer }).hash;

/** SHA-256 with OpenSSL. */
export const nodeSha256: (m: Uint8Array) => Uint8Array = oneShotHash !== undefined
  ? (m) => oneShotHash("sha256", m, "buffer")
  : (m) => createHash("sha256").update(m).digest();

// HMAC-SHA-256 (RFC 2104) as two one-shot digests over scratch blocks, not createHmac: each createHmac is
// an Hmac object with a native handle and an OpenSSL HMAC context set up for one MAC, and a dh handshake
// takes 16 to 18 MACs of short messages. Measured per MAC (32-byte key, 33-byte message): 2.16 us against
// 2.45; in a complete dh handshake without its X25519 work, 68-73 us against 80-81. The pads and the inner
// digest are key material: wiped after each MAC. Messages past the scratch block take createHmac. Not the
// portable hmac (firmware/crypto/hmac.ts) over nodeSha256: it allocates both hash inputs per MAC (3.27 us).
const HMAC_BLOCK = 64;
const HMAC_SCRATCH = 512;
const innerBlock = Buffer.alloc(HMAC_BLOCK + HMAC_SCRATCH);
const outerBlock = Buffer.alloc(HMAC_BLOCK + 32);

function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (oneShotHash === undefined || message.length > HMAC_SCRATCH) return createHmac("sha256", key).update(message).digest();
  const k = key.length > HMAC_BLOCK ? oneShotHash("sha256", key, "buffer") : key;
  for (let i = 0; i < HMAC_BLOCK; i++) {
    const b = i < k.length ? k[i] : 0;
    innerBlock[i] = b ^ 0x36;
    outerBlock[i] = b ^ 0x5c;
  }
  const end = HMAC_BLOCK + message.length;
  innerBlock.set(message, HMAC_BLOCK);
  const inner = oneShotHash("sha256", innerBlock.subarray(0, end), "buffer");
  innerBlock.fill(0, 0, end);
  outerBlock.set(inner, HMAC_BLOCK);
  inner.fill(0);
  const mac = oneShotHash("sha256", outerBlock, "buffer");
  outerBlock.fill(0);
  if (k !== key) k.fill(0);
  return mac;
}

export const hostProvider: CryptoProvider = {
  name: "node:crypto",
  sha256: nodeSha256,
  hmac: hmacSha256,
  ccm: (key, tagLen, nonceLen) => nodeCcm(key, tagLen, nonceLen),
  x25519: nodeX25519,
  random: (n) => randomBytes(n),
  keyPair: nodeKeyPair,
};
