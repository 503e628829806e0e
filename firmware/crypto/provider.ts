// A crypto provider: the primitives the protocol needs, each either portable TypeScript or the board's
// native implementation, chosen by the board profile. Hosts use host/crypto/node-provider.ts instead.
import { alloc, Bytes } from "#target";
import { Aead } from "../record/record";
import { aesBlock, BlockEncrypt, ccmOpen, ccmSeal } from "./ccm";
import { Hash, hmac } from "./hmac";
import { sha256 } from "./sha256";
import { x25519 } from "./x25519";

/** A key pair: `s` secret (32 bytes), `S` public. Ephemeral pairs are used for one handshake only. */
export type KeyPair = { s: Bytes; S: Bytes };

export type CryptoProvider = {
  /** Which implementation each primitive uses, for reports: e.g. "sha256:native aes:portable". */
  name: string;
  sha256: Hash;
  /** AES-128-CCM with the key bound in. */
  ccm: (this: void, key: Bytes, tagLen: number, nonceLen: number) => Aead;
  /** HMAC-SHA-256: native where the board has it (NodeMCU's crypto.hmac, node:crypto). */
  hmac: (this: void, key: Bytes, message: Bytes) => Bytes;
  x25519: (this: void, scalar: Bytes, u: Bytes) => Bytes;
  random: (this: void, n: number) => Bytes;
  /** A fresh X25519 key pair (one base-point multiplication; a slow board computes it ahead, in slices). */
  keyPair: (this: void) => KeyPair;
};

/** CCM over any AES block function: how a board with only native AES-ECB still seals in hardware. */
export function ccmAead(enc: BlockEncrypt, tagLen: number, nonceLen: number): Aead {
  return {
    tagLen: tagLen,
    nonceLen: nonceLen,
    seal: (nonce: Bytes, aad: Bytes, pt: Bytes) => ccmSeal(enc, nonce, aad, pt, tagLen),
    open: (nonce: Bytes, aad: Bytes, sealed: Bytes) => ccmOpen(enc, nonce, aad, sealed, tagLen),
  };
}

/** A key pair from any X25519 and entropy source. */
export function keyPairWith(x: (s: Bytes, u: Bytes) => Bytes, random: (n: number) => Bytes): KeyPair {
  const s = random(32);
  const base = alloc(32);
  base[0] = 9;
  return { s: s, S: x(s, base) };
}

/** Everything in portable TypeScript; only the entropy comes from the board. */
export function portableProvider(random: (n: number) => Bytes): CryptoProvider {
  return {
    keyPair: () => keyPairWith(x25519, random),
    name: "sha256:portable aes:portable x25519:portable",
    sha256: sha256,
    hmac: (key: Bytes, message: Bytes) => hmac(sha256, 64, key, message),
    ccm: (key: Bytes, tagLen: number, nonceLen: number) => ccmAead(aesBlock(key), tagLen, nonceLen),
    x25519: x25519,
    random: random,
  };
}

export function hmacWith(p: CryptoProvider, key: Bytes, message: Bytes): Bytes {
  return p.hmac(key, message);
}
