// The host's CryptoProvider: node:crypto for everything (OpenSSL's X25519, SHA-256 and AES-CCM), so the
// gateway runs the same handshake code as the boards at native speed.
import * as crypto from "node:crypto";
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import type { CryptoProvider } from "../../firmware/crypto/provider";
import type { KeyPair } from "../../firmware/handshake/dh";
import { nodeCcm } from "./aead";

// RFC 8410 DER wrappers for raw X25519 keys.
const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");

// Importing a key into OpenSSL costs more than the X25519 itself (DER parsing in OpenSSL 3), so private keys
// are imported once per scalar buffer and remembered; public keys come in through JWK, the fast path.
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

export function x25519PrivateKey(s: Uint8Array): KeyObject {
  let k = privateKeys.get(s);
  if (!k) {
    k = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, s]), format: "der", type: "pkcs8" });
    privateKeys.set(s, k);
  }
  return k;
}

// Static public keys (a pinned gateway key, a registered device's key) come back in every handshake, so
// their imported KeyObjects are kept; the cache is bounded because ephemeral keys never repeat.
const publicKeys = new Map<string, KeyObject>();
const PUBLIC_CACHE = 4096;

export function x25519PublicKey(u: Uint8Array): KeyObject {
  const x = Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString("base64url");
  let k = publicKeys.get(x);
  if (!k) {
    k = createPublicKey({ key: { kty: "OKP", crv: "X25519", x }, format: "jwk" });
    if (publicKeys.size >= PUBLIC_CACHE) publicKeys.delete(publicKeys.keys().next().value as string);
    publicKeys.set(x, k);
  }
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

/** A fresh X25519 key pair, generated inside OpenSSL (no import needed for its later use). */
export function nodeKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync("x25519");
  const jwk = privateKey.export({ format: "jwk" }); // the secret and the public key in one export
  const s = new Uint8Array(Buffer.from(jwk.d!, "base64url"));
  const S = new Uint8Array(Buffer.from(jwk.x!, "base64url"));
  privateKeys.set(s, privateKey);
  return { s, S };
}

// One-shot hashing (Node 20.12 and later): no Hash object, with its native handle, per call.
const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: "buffer") => Buffer }).hash;

/** SHA-256 with OpenSSL. */
export const nodeSha256: (m: Uint8Array) => Uint8Array = oneShotHash !== undefined
  ? (m) => oneShotHash("sha256", m, "buffer")
  : (m) => createHash("sha256").update(m).digest();

export const hostProvider: CryptoProvider = {
  name: "node:crypto",
  sha256: nodeSha256,
  hmac: (k, m) => createHmac("sha256", k).update(m).digest(),
  ccm: (key, tagLen, nonceLen) => nodeCcm(key, tagLen, nonceLen),
  x25519: nodeX25519,
  random: (n) => randomBytes(n),
  keyPair: nodeKeyPair,
};
