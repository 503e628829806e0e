// The host's CryptoProvider: node:crypto for everything (OpenSSL's X25519, SHA-256 and AES-CCM), so the
// gateway runs the same handshake code as the boards at native speed.
import { createHash, createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from "node:crypto";
import type { CryptoProvider } from "../../firmware/crypto/provider";
import type { KeyPair } from "../../firmware/handshake/dh";
import { nodeCcm } from "./aead";

// RFC 8410 DER wrappers for raw X25519 keys.
const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");

export function x25519PrivateKey(s: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, s]), format: "der", type: "pkcs8" });
}

export function x25519PublicKey(u: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, u]), format: "der", type: "spki" });
}

/** X25519(scalar, u) with OpenSSL. OpenSSL refuses an all-zero result; RFC 7748 returns it, so do we. */
export function nodeX25519(s: Uint8Array, u: Uint8Array): Uint8Array {
  try {
    return diffieHellman({ privateKey: x25519PrivateKey(s), publicKey: x25519PublicKey(u) });
  } catch {
    return new Uint8Array(32);
  }
}

/** A fresh X25519 key pair. */
export function nodeKeyPair(): KeyPair {
  const s = randomBytes(32);
  const S = createPublicKey(x25519PrivateKey(s)).export({ format: "der", type: "spki" }).subarray(SPKI_X25519.length);
  return { s, S: new Uint8Array(S) };
}

export const hostProvider: CryptoProvider = {
  name: "node:crypto",
  sha256: (m) => createHash("sha256").update(m).digest(),
  ccm: (key, tagLen, nonceLen) => nodeCcm(key, tagLen, nonceLen),
  x25519: nodeX25519,
  random: (n) => randomBytes(n),
};
