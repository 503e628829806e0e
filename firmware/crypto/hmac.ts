// HMAC (RFC 2104), over any one-shot hash; HMAC-SHA-256 is RFC 4231's.
//
// The hash is a parameter so that a board with a native SHA-256 (NodeMCU's crypto, an ESP32's hardware)
// can use it instead of the portable one, at the cost of one copy of the message per call.
import { alloc, Bytes } from "#target";
import { concat, copyInto, wipe } from "../bytes";
import { sha256, SHA256_BLOCK } from "./sha256";

/** A one-shot hash function: message in, digest out. */
export type Hash = (message: Bytes) => Bytes;

/** key XOR the repeated byte, over a whole block (the key is zero-padded to the block, RFC 2104 step 1). */
function padKey(k0: Bytes, pad: number): Bytes {
  const out = alloc(k0.length);
  for (let i = 0; i < k0.length; i++) out[i] = k0[i] ^ pad;
  return out;
}

/** HMAC of message under key, with `hash` whose block is `blockSize` bytes (64 for SHA-256). */
export function hmac(hash: Hash, blockSize: number, key: Bytes, message: Bytes): Bytes {
  // A key longer than a block is replaced by its hash; a shorter one is padded with zeros.
  const k = key.length > blockSize ? hash(key) : key;
  const k0 = alloc(blockSize);
  copyInto(k0, 0, k, k.length);
  const ipad = padKey(k0, 0x36);
  const opad = padKey(k0, 0x5c);
  const innerInput = concat(ipad, message);
  const inner = hash(innerInput);
  const outerInput = concat(opad, inner);
  const mac = hash(outerInput);
  // Everything but the MAC is key-dependent: clear it rather than leave it to the garbage collector.
  wipe(k0);
  wipe(ipad);
  wipe(opad);
  wipe(inner);
  wipe(innerInput);
  wipe(outerInput);
  return mac;
}

/** HMAC-SHA-256: a 32-byte MAC. */
export function hmacSha256(key: Bytes, message: Bytes): Bytes {
  return hmac(sha256, SHA256_BLOCK, key, message);
}
