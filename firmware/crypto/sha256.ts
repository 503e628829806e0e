// SHA-256 (FIPS 180-4), one-shot, portable to JavaScript, Espruino and 32/64-bit Lua.
//
// Words go through the `#target` intrinsics, so the same source gives the same bytes whatever the width of
// the target's integers. Only whole message blocks are read in place; the padded tail (one or two blocks)
// is built in a small buffer, so hashing never copies the message.
import { add32, alloc, Bytes, fdiv, rotr, shl, shr, u32, words, Words } from "#target";
import { fromHex, wipe } from "../bytes";

export const SHA256_BLOCK = 64;
export const SHA256_SIZE = 32;

// Initial hash value (FIPS 180-4 5.3.3) and round constants (4.2.2), as hex: a 64-element literal array
// would cost 64 JsVars on Espruino, and most of the constants are above 0x7FFFFFFF, which Lua and the
// portability rules forbid as literals. They were checked against exact integer roots of the primes.
const IV_HEX = "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19";
const K_HEX =
  "428a2f9871374491b5c0fbcfe9b5dba53956c25b59f111f1923f82a4ab1c5ed5" +
  "d807aa9812835b01243185be550c7dc372be5d7480deb1fe9bdc06a7c19bf174" +
  "e49b69c1efbe47860fc19dc6240ca1cc2de92c6f4a7484aa5cb0a9dc76f988da" +
  "983e5152a831c66db00327c8bf597fc7c6e00bf3d5a7914706ca635114292967" +
  "27b70a852e1b21384d2c6dfc53380d13650a7354766a0abb81c2c92e92722c85" +
  "a2bfe8a1a81a664bc24b8b70c76c51a3d192e819d6990624f40e3585106aa070" +
  "19a4c1161e376c082748774c34b0bcb5391c0cb34ed8aa4a5b9cca4f682e6ff3" +
  "748f82ee78a5636f84c878148cc7020890befffaa4506cebbef9a3f7c67178f2";

/** The big-endian word at b[o, o+4). Built from two 16-bit halves so no intermediate reaches 2^31. */
function readWord(b: Bytes, o: number): number {
  return u32(b[o] * 256 + b[o + 1], b[o + 2] * 256 + b[o + 3]);
}

/** Stores word w big-endian at b[o, o+4), masked because a Lua table does not truncate. */
function writeWord(b: Bytes, o: number, w: number): void {
  b[o] = shr(w, 24);
  b[o + 1] = shr(w, 16) & 0xff;
  b[o + 2] = shr(w, 8) & 0xff;
  b[o + 3] = w & 0xff;
}

function decodeWords(hex: string): Words {
  const b = fromHex(hex) as Bytes;
  const n = fdiv(b.length, 4);
  const w = words(n);
  for (let i = 0; i < n; i++) w[i] = readWord(b, 4 * i);
  return w;
}

// Decoded once at load time (Espruino does not hoist: the helpers above must precede these lines).
const IV = /* @__PURE__ */ decodeWords(IV_HEX);
const K = /* @__PURE__ */ decodeWords(K_HEX);

/** Folds the 64-byte block at block[off] into state, using w (64 words) as the message schedule. */
function compress(state: Words, w: Words, block: Bytes, off: number): void {
  for (let t = 0; t < 16; t++) w[t] = readWord(block, off + 4 * t);
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15];
    const y = w[t - 2];
    const s0 = rotr(x, 7) ^ rotr(x, 18) ^ shr(x, 3);
    const s1 = rotr(y, 17) ^ rotr(y, 19) ^ shr(y, 10);
    w[t] = add32(add32(s1, w[t - 7]), add32(s0, w[t - 16]));
  }
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  let e = state[4];
  let f = state[5];
  let g = state[6];
  let h = state[7];
  for (let t = 0; t < 64; t++) {
    const sigma1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    // Ch and Maj in forms that need no complement (not32) and one operation fewer: same truth tables.
    const ch = g ^ (e & (f ^ g));
    const t1 = add32(add32(add32(h, sigma1), add32(ch, K[t])), w[t]);
    const sigma0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const maj = (a & b) | (c & (a | b));
    h = g;
    g = f;
    f = e;
    e = add32(d, t1);
    d = c;
    c = b;
    b = a;
    a = add32(t1, add32(sigma0, maj));
  }
  state[0] = add32(state[0], a);
  state[1] = add32(state[1], b);
  state[2] = add32(state[2], c);
  state[3] = add32(state[3], d);
  state[4] = add32(state[4], e);
  state[5] = add32(state[5], f);
  state[6] = add32(state[6], g);
  state[7] = add32(state[7], h);
}

/** SHA-256 of a message shorter than 2^31 bytes: 32 bytes. */
export function sha256(message: Bytes): Bytes {
  const len = message.length;
  const state = words(8);
  for (let i = 0; i < 8; i++) state[i] = IV[i];
  const w = words(64);
  const whole = fdiv(len, SHA256_BLOCK) * SHA256_BLOCK;
  for (let off = 0; off < whole; off += SHA256_BLOCK) compress(state, w, message, off);

  // The rest, 0x80, zeros, and the 64-bit bit length 8*len: its high word is len >> 29 and its low word
  // len << 3, so the length never needs a number above 2^31. It takes two blocks when fewer than 9 bytes
  // of the last one are free.
  const rest = len - whole;
  const tail = alloc(rest < 56 ? SHA256_BLOCK : 2 * SHA256_BLOCK);
  for (let i = 0; i < rest; i++) tail[i] = message[whole + i];
  tail[rest] = 0x80;
  writeWord(tail, tail.length - 8, shr(len, 29));
  writeWord(tail, tail.length - 4, shl(len, 3));
  for (let off = 0; off < tail.length; off += SHA256_BLOCK) compress(state, w, tail, off);

  const out = alloc(SHA256_SIZE);
  for (let i = 0; i < 8; i++) writeWord(out, 4 * i, state[i]);
  // The schedule and tail hold message words, which for HMAC means key material.
  for (let i = 0; i < 64; i++) w[i] = 0;
  wipe(tail);
  return out;
}
