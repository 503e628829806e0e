// Espruino's native crypto as a CryptoProvider. The natives are passed in by the board's boot code
// (`require("crypto")`, `E.hwRand`) rather than required here, so the bundle holds no module loader and the
// provider can be exercised in a sandbox.
//
// Two firmware limits shape this: AES.ccmEncrypt takes no associated data, so it cannot authenticate an SSE
// header and is not used (CCM runs in TypeScript over native AES-ECB blocks instead); and ECB input that is
// not a multiple of 16 bytes silently returns zeros, so only whole blocks are ever passed.
import { Bytes } from "#target";
import { NativeCrypto } from "../board";
import { ccmAead, CryptoProvider, keyPairWith } from "../crypto/provider";
import { aesBlock, BlockEncrypt } from "../crypto/ccm";
import { sha256 } from "../crypto/sha256";
import { hmac } from "../crypto/hmac";
import { x25519 } from "../crypto/x25519";
import { bytesFromWords } from "./random";

/** The parts of Espruino's `require("crypto")` this provider uses. */
export type EspruinoCrypto = {
  SHA256: (this: void, message: Bytes) => ArrayBuffer;
  AES: { encrypt: (this: void, data: Bytes, key: Bytes, options: { mode: string }) => ArrayBuffer };
};

function nativeBlock(c: EspruinoCrypto, key: Bytes): BlockEncrypt {
  const opts = { mode: "ECB" };
  return (input: Bytes, out: Bytes) => {
    const r = new Uint8Array(c.AES.encrypt(input, key, opts));
    for (let i = 0; i < 16; i++) out[i] = r[i];
  };
}

/** The natives the boot code passes in: `{ crypto: require("crypto"), hwRand: E.hwRand }`. */
export type Natives = { crypto: EspruinoCrypto; hwRand: () => number };

export function boardProvider(native: NativeCrypto, n: Natives): CryptoProvider {
  const c = n.crypto;
  const random = bytesFromWords(n.hwRand);
  const hash = native.sha256 ? (m: Bytes) => new Uint8Array(c.SHA256(m)) : sha256;
  return {
    name: "sha256:" + (native.sha256 ? "native" : "portable") + " aes:" + (native.aes ? "native" : "portable") +
      " x25519:portable",
    sha256: hash,
    hmac: (key: Bytes, m: Bytes) => hmac(hash, 64, key, m),
    ccm: (key: Bytes, tagLen: number, nonceLen: number) =>
      ccmAead(native.aes ? nativeBlock(c, key) : aesBlock(key), tagLen, nonceLen),
    x25519: x25519,
    random: random,
    keyPair: () => keyPairWith(x25519, random),
  };
}
