// A crypto provider: the primitives the protocol needs, each either portable TypeScript or the board's
// native implementation, chosen by the board profile. Hosts use host/crypto/node-provider.ts instead.
import { Bytes } from "#target";
import { Aead } from "../record/record";
import { aesBlock, BlockEncrypt, ccmOpen, ccmSeal } from "./ccm";
import { hkdfExpand, hkdfExtract } from "./hkdf";
import { Hash, hmac } from "./hmac";
import { sha256 } from "./sha256";
import { x25519 } from "./x25519";

export type CryptoProvider = {
  /** Which implementation each primitive uses, for reports: e.g. "sha256:native aes:portable". */
  name: string;
  sha256: Hash;
  /** AES-128-CCM with the key bound in. */
  ccm: (this: void, key: Bytes, tagLen: number, nonceLen: number) => Aead;
  x25519: (this: void, scalar: Bytes, u: Bytes) => Bytes;
  random: (this: void, n: number) => Bytes;
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

/** Everything in portable TypeScript; only the entropy comes from the board. */
export function portableProvider(random: (n: number) => Bytes): CryptoProvider {
  return {
    name: "sha256:portable aes:portable x25519:portable",
    sha256: sha256,
    ccm: (key: Bytes, tagLen: number, nonceLen: number) => ccmAead(aesBlock(key), tagLen, nonceLen),
    x25519: x25519,
    random: random,
  };
}

export function hmacWith(p: CryptoProvider, key: Bytes, message: Bytes): Bytes {
  return hmac(p.sha256, 64, key, message);
}

/** HKDF-SHA-256 (RFC 5869) over the provider's hash. */
export function hkdfWith(p: CryptoProvider, ikm: Bytes, salt: Bytes, info: Bytes, length: number): Bytes {
  return hkdfExpand(p.sha256, 64, hkdfExtract(p.sha256, 64, salt, ikm), info, length);
}
