// AES-CCM (RFC 3610, NIST SP 800-38C): CBC-MAC over the formatted nonce, aad and message, then CTR
// encryption of the message and of the MAC. The block cipher is a parameter so that a board with a native
// AES-ECB (nRF52 hardware, NodeMCU's crypto module) can use it instead of the portable `aes.ts`.
import { alloc, Bytes, fdiv } from "#target";
import { copyInto, equalCT, slice, wipe } from "../bytes";
import { aesEncryptBlock, aesExpandKey } from "./aes";

/**
 * Encrypts the 16-byte block `input` into `out` with a fixed key. CCM always passes two distinct buffers,
 * so a native implementation need not support encrypting in place.
 */
export type BlockEncrypt = (input: Bytes, out: Bytes) => void;

/** A BlockEncrypt running the portable AES with `key` (16 or 32 bytes). */
export function aesBlock(key: Bytes): BlockEncrypt {
  const rk = aesExpandKey(key);
  return function (input: Bytes, out: Bytes): void {
    aesEncryptBlock(rk, input, 0, out, 0);
  };
}

// RFC 3610 encodes aad lengths from 0xFF00 upwards with a 6- or 10-byte prefix; the protocol's headers are
// tiny, so only the 2-byte form is implemented and anything longer is refused rather than mis-encoded.
const MAX_AAD = 0xfeff;

// Checks the parameters the caller chose and returns L, the byte width of the message-length field.
function checkParams(nonce: Bytes, aad: Bytes, tagLen: number): number {
  if (nonce.length < 7 || nonce.length > 13) throw "ccm: nonce must be 7 to 13 bytes";
  // fdiv rather than `& 1`, so that a fractional tagLen is refused instead of raising an error in Lua.
  if (tagLen < 4 || tagLen > 16 || fdiv(tagLen, 2) * 2 !== tagLen) {
    throw "ccm: tag length must be 4, 6, 8, 10, 12, 14 or 16";
  }
  if (aad.length > MAX_AAD) throw "ccm: aad longer than 65279 bytes is not supported";
  return 15 - nonce.length;
}

// Whether a message of n bytes can be counted in L bytes. For L >= 4 the limit (2^32 or more) is above
// any buffer these targets can hold, and above the 2^31 that portable integers may reach.
function fitsLength(L: number, n: number): boolean {
  if (L === 2) return n < 0x10000;
  if (L === 3) return n < 0x1000000;
  return true;
}

// Writes n big-endian into the last L bytes of a block. n < 2^31, so the bytes above the fourth are zero.
function putTail(b: Bytes, L: number, n: number): void {
  let v = n;
  for (let i = 15; i >= 16 - L; i--) {
    b[i] = v & 0xff;
    v = fdiv(v, 256);
  }
}

// The counter block A_i: flags L-1, the nonce, and the counter i in the last L bytes.
function counterBlock(nonce: Bytes, L: number, i: number): Bytes {
  const a = alloc(16);
  a[0] = L - 1;
  copyInto(a, 1, nonce, nonce.length);
  putTail(a, L, i);
  return a;
}

// x = E(x ^ block) for each block of data, the last one zero-padded. `blk` is scratch; it and x are
// distinct buffers because BlockEncrypt promises that to native implementations.
function absorb(enc: BlockEncrypt, x: Bytes, blk: Bytes, data: Bytes): void {
  const n = data.length;
  for (let i = 0; i < n; i += 16) {
    for (let j = 0; j < 16; j++) blk[j] = i + j < n ? x[j] ^ data[i + j] : x[j];
    enc(blk, x);
  }
}

// The untruncated CBC-MAC T of RFC 3610 section 2.2.
function cbcMac(enc: BlockEncrypt, nonce: Bytes, aad: Bytes, msg: Bytes, tagLen: number, L: number): Bytes {
  const x = alloc(16);
  const blk = alloc(16);
  blk[0] = (aad.length > 0 ? 64 : 0) + 8 * fdiv(tagLen - 2, 2) + (L - 1);
  copyInto(blk, 1, nonce, nonce.length);
  putTail(blk, L, msg.length);
  enc(blk, x);
  if (aad.length > 0) {
    const a = alloc(aad.length + 2);
    a[0] = fdiv(aad.length, 256);
    a[1] = aad.length & 0xff;
    copyInto(a, 2, aad, aad.length);
    absorb(enc, x, blk, a);
  }
  absorb(enc, x, blk, msg);
  wipe(blk);
  return x;
}

// dst[0, n) = src[0, n) ^ keystream, the keystream being E(A_1) || E(A_2) || ...
function ctrXor(enc: BlockEncrypt, nonce: Bytes, L: number, src: Bytes, dst: Bytes, n: number): void {
  const ks = alloc(16);
  for (let i = 0; i < n; i += 16) {
    enc(counterBlock(nonce, L, fdiv(i, 16) + 1), ks);
    const m = n - i < 16 ? n - i : 16;
    for (let j = 0; j < m; j++) dst[i + j] = src[i + j] ^ ks[j];
  }
  wipe(ks);
}

// The transmitted tag U = first tagLen bytes of T ^ E(A_0).
function finalTag(enc: BlockEncrypt, nonce: Bytes, L: number, mac: Bytes, tagLen: number): Bytes {
  const s0 = alloc(16);
  enc(counterBlock(nonce, L, 0), s0);
  const u = alloc(tagLen);
  for (let j = 0; j < tagLen; j++) u[j] = mac[j] ^ s0[j];
  wipe(s0);
  wipe(mac);
  return u;
}

/**
 * Encrypts and authenticates: returns ciphertext || tag (plaintext.length + tagLen bytes).
 * Throws a string for a nonce outside 7..13 bytes, a tag length outside {4, 6, ..., 16}, aad over
 * 65279 bytes, or a plaintext too long for the length field the nonce leaves (L = 15 - nonce length).
 */
export function ccmSeal(enc: BlockEncrypt, nonce: Bytes, aad: Bytes, plaintext: Bytes, tagLen: number): Bytes {
  const L = checkParams(nonce, aad, tagLen);
  const n = plaintext.length;
  if (!fitsLength(L, n)) throw "ccm: plaintext too long for this nonce length";
  const mac = cbcMac(enc, nonce, aad, plaintext, tagLen, L);
  const out = alloc(n + tagLen);
  ctrXor(enc, nonce, L, plaintext, out, n);
  copyInto(out, n, finalTag(enc, nonce, L, mac, tagLen), tagLen);
  return out;
}

/**
 * Verifies and decrypts ciphertext || tag. Returns the plaintext, or undefined when the tag does not verify
 * or `sealed` cannot be a CCM message for these parameters (shorter than the tag, too long for L).
 * Throws a string for bad parameters, as ccmSeal does.
 */
export function ccmOpen(
  enc: BlockEncrypt,
  nonce: Bytes,
  aad: Bytes,
  sealed: Bytes,
  tagLen: number,
): Bytes | undefined {
  const L = checkParams(nonce, aad, tagLen);
  const n = sealed.length - tagLen;
  if (n < 0 || !fitsLength(L, n)) return undefined;
  const pt = alloc(n);
  ctrXor(enc, nonce, L, sealed, pt, n);
  const expected = finalTag(enc, nonce, L, cbcMac(enc, nonce, aad, pt, tagLen, L), tagLen);
  if (!equalCT(expected, slice(sealed, n, sealed.length))) {
    // The MAC covers the plaintext, so it had to be decrypted first; none of it may leave this function.
    wipe(pt);
    return undefined;
  }
  return pt;
}
