// NodeMCU's native crypto as a CryptoProvider (Lua on ESP32). The module tables are passed in by the
// board's boot code. NodeMCU's `crypto.hash` and `crypto.hmac` work on Lua strings, so bytes cross as strings.
//
// X25519: the portable ladder needs 64-bit integers. On a 32-bit-integer build (NodeMCU's default) the
// provider uses `sodium.crypto_scalarmult(n, p)`, a thin binding of libsodium's crypto_scalarmult that the
// sesame firmware image adds to NodeMCU's sodium module; without it a 32-bit build must use `psk` mode.
import { alloc, Bytes, INT32_ONLY } from "#target";
import { NativeCrypto } from "../board";
import { aesBlock } from "../crypto/ccm";
import { ccmAead, CryptoProvider, keyPairWith } from "../crypto/provider";
import { sha256 } from "../crypto/sha256";
import { hmac } from "../crypto/hmac";
import { x25519 } from "../crypto/x25519";
import { bytesFromWords } from "./random";

/** The parts of NodeMCU's `crypto` and `sodium` modules this provider uses. */
export type Natives = {
  crypto?: { hash: (this: void, algo: string, data: string) => string; hmac: (this: void, algo: string, data: string, key: string) => string };
  sodium?: { random: { random: (this: void) => number }; crypto_scalarmult?: (this: void, n: string, p: string) => string };
};

function toStr(b: Bytes): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function fromStr(s: string): Bytes {
  const out = alloc(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function boardProvider(native: NativeCrypto, m: Natives): CryptoProvider {
  const c = m.crypto;
  const sodium = m.sodium;
  const scalarmult = sodium !== undefined ? sodium.crypto_scalarmult : undefined;
  let xName = "portable";
  let x = x25519;
  if (native.x25519 && scalarmult !== undefined) {
    xName = "native";
    x = (n: Bytes, p: Bytes) => fromStr(scalarmult(toStr(n), toStr(p)));
  } else if (INT32_ONLY) {
    xName = "unavailable";
    x = () => {
      throw "x25519 needs 64-bit Lua integers or sodium.crypto_scalarmult; use psk mode on this board";
    };
  }
  if (sodium === undefined) throw "nodemcu: the sodium module (random numbers) is required";
  const random = bytesFromWords(sodium.random.random);
  const hash = native.sha256 && c !== undefined ? (msg: Bytes) => fromStr(c.hash("sha256", toStr(msg))) : sha256;
  return {
    name: "sha256:" + (native.sha256 && c !== undefined ? "native" : "portable") + " aes:portable x25519:" + xName,
    sha256: hash,
    hmac: native.hmac && c !== undefined
      ? (key: Bytes, msg: Bytes) => fromStr(c.hmac("sha256", toStr(msg), toStr(key)))
      : (key: Bytes, msg: Bytes) => hmac(hash, 64, key, msg),
    ccm: (key: Bytes, tagLen: number, nonceLen: number) => ccmAead(aesBlock(key), tagLen, nonceLen),
    x25519: x,
    random: random,
    keyPair: () => keyPairWith(x, random),
  };
}
