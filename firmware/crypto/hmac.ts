// HMAC (RFC 2104), over any one-shot hash; HMAC-SHA-256 is RFC 4231's.
//
// The hash is a parameter so that a board with a native SHA-256 (NodeMCU's crypto, an ESP32's hardware)
// can use it instead of the portable one, at the cost of one copy of the message per call.
import { alloc, Bytes } from "#target";
import { copyInto, wipe } from "../bytes";
import { sha256, SHA256_BLOCK } from "./sha256";

/** A one-shot hash function: message in, digest out. */
export type Hash = (message: Bytes) => Bytes;

/**
 * (key zero-padded to a block, XOR the repeated byte) || tail: one hash input, written in one buffer. It is
 * made in a function of its own so that the input is garbage as soon as its hash is taken (a board with a
 * few thousand JsVars feels every buffer held longer than needed).
 */
function hashPadded(hash: Hash, blockSize: number, key: Bytes, pad: number, tail: Bytes): Bytes {
  const input = alloc(blockSize + tail.length);
  for (let i = 0; i < blockSize; i++) input[i] = (i < key.length ? key[i] : 0) ^ pad;
  copyInto(input, blockSize, tail, tail.length);
  const digest = hash(input);
  // Key-dependent: cleared rather than left to the garbage collector.
  wipe(input);
  return digest;
}

/** HMAC of message under key, with `hash` whose block is `blockSize` bytes (64 for SHA-256). */
export function hmac(hash: Hash, blockSize: number, key: Bytes, message: Bytes): Bytes {
  // A key longer than a block is replaced by its hash; a shorter one is padded with zeros.
  const k = key.length > blockSize ? hash(key) : key;
  const inner = hashPadded(hash, blockSize, k, 0x36, message);
  const mac = hashPadded(hash, blockSize, k, 0x5c, inner);
  wipe(inner);
  if (k !== key) wipe(k);
  return mac;
}

/** HMAC-SHA-256: a 32-byte MAC. */
export function hmacSha256(key: Bytes, message: Bytes): Bytes {
  return hmac(sha256, SHA256_BLOCK, key, message);
}
