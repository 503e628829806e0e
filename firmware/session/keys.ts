// The session key schedule: from a handshake's master secret to the AEAD key and IV of every record.
//
// Each direction has its own chain of traffic secrets; key index i of a direction uses the i-th secret of
// its chain. Moving from i to i+1 is a one-way step (QUIC's key update, RFC 9001 6): the caller derives
// the next secret and wipes the old one, so a device compromised later cannot recompute the keys of
// records it sent or received earlier. Both ends step without any message, as SVC derives K_i from K_M
// and i; a record's FLAGS carry KEY_PHASE = i & 1 so the receiver knows when to step.
//
// Key schedule (all HMAC-SHA-256, each an HKDF-Expand (RFC 5869) of one output block, i.e. info || 0x01):
//
//   S_0(i2r)  = HMAC(K_M, "sesame i2r" || 0x01)     initiator -> responder traffic secret, 32 bytes
//   S_0(r2i)  = HMAC(K_M, "sesame r2i" || 0x01)     responder -> initiator traffic secret, 32 bytes
//   S_{i+1}   = HMAC(S_i, "sesame ku"  || 0x01)     key update; S_i is then wiped
//   key_i     = first keyLen bytes of   HMAC(S_i, "sesame key" || 0x01)
//   iv_i      = first nonceLen bytes of HMAC(S_i, "sesame iv"  || 0x01)
//
// Labels are ASCII without a terminator. K_M is Established.masterKey (firmware/handshake/dh.ts); keyLen and
// nonceLen come from the suite (16 and 13 for constrained, 32 and 12 for backbone), and both are at most
// the 32 bytes of one block. The record nonce is iv_i XOR the sequence number (docs/PROTOCOL.md 1.4).
import { alloc, Bytes } from "#target";
import { ascii, concat, slice, wipe } from "../bytes";
import { CryptoProvider, hmacWith } from "../crypto/provider";
import { Suite } from "../suite";

/** Initiator to responder. */
export const DIR_I2R = 0;
/** Responder to initiator. */
export const DIR_R2I = 1;

/** The labels, as docs/PROTOCOL.md quotes them. */
export const LABEL_I2R = "sesame i2r";
export const LABEL_R2I = "sesame r2i";
export const LABEL_KU = "sesame ku";
export const LABEL_KEY = "sesame key";
export const LABEL_IV = "sesame iv";

/** HKDF-Expand(prk, label, L <= 32) with a single block: T(1) = HMAC(prk, label || 0x01). */
function expand1(p: CryptoProvider, prk: Bytes, label: string): Bytes {
  const one = alloc(1);
  one[0] = 1;
  return hmacWith(p, prk, concat(ascii(label), one));
}

/** The first traffic secret (index 0) of a direction; throws a string for a direction that is not 0 or 1. */
export function trafficSecret(p: CryptoProvider, masterKey: Bytes, dir: number): Bytes {
  if (dir !== DIR_I2R && dir !== DIR_R2I) throw "keys: direction must be DIR_I2R or DIR_R2I";
  return expand1(p, masterKey, dir === DIR_I2R ? LABEL_I2R : LABEL_R2I);
}

/** The traffic secret of the next key index. The caller wipes `secret` once it has what it needs from it. */
export function nextTrafficSecret(p: CryptoProvider, secret: Bytes): Bytes {
  return expand1(p, secret, LABEL_KU);
}

export type EpochKeys = {
  /** The key index i; the record's KEY_PHASE bit is i & 1. */
  index: number;
  key: Bytes;
  iv: Bytes;
};

function truncated(p: CryptoProvider, secret: Bytes, label: string, n: number): Bytes {
  const block = expand1(p, secret, label);
  const out = slice(block, 0, n);
  wipe(block);
  return out;
}

/**
 * The AEAD key and IV of the secret's key index. `index` is only carried along: the secret already is the
 * index-th one of its chain.
 */
export function epochKeys(p: CryptoProvider, secret: Bytes, index: number, suite: Suite): EpochKeys {
  return {
    index: index,
    key: truncated(p, secret, LABEL_KEY, suite.keyLen),
    iv: truncated(p, secret, LABEL_IV, suite.nonceLen),
  };
}
