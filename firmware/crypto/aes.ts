// AES block encryption (FIPS 197), AES-128 and AES-256, encryption direction only: CCM never decrypts a
// block, so the inverse S-box and InvMixColumns would be dead weight on a board.
//
// The round works on bytes (SubBytes, ShiftRows, MixColumns with xtime) rather than on four 256-word
// T-tables: on Espruino every element of a plain array is a JsVar and a Puck.js has ~2600 of them, and
// on Lua each table slot is a full value (16 bytes on 64-bit builds), so 1024 words would cost 16 KiB. The
// two 256-byte tables below (S-box and xtime) are computed at load time by arithmetic, so no table of
// constants can be mistyped.
import { alloc, Bytes, fdiv, shl, shr, Words, words } from "#target";
import { wipe } from "../bytes";

function rotl8(x: number, n: number): number {
  return (shl(x, n) | shr(x, 8 - n)) & 0xff;
}

/** XT[x] = x * 2 in GF(2^8) mod x^8 + x^4 + x^3 + x + 1; a table so the round has no data-dependent branch. */
function xtimeTable(): Bytes {
  const xt = alloc(256);
  for (let x = 0; x < 256; x++) xt[x] = (x * 2) ^ ((x & 0x80) !== 0 ? 0x11b : 0);
  return xt;
}

// Walks the multiplicative group with generator 3: p runs over 3^k and q over 3^-k, so q is the inverse of
// p, and the S-box entry is the affine map of q. This is load-time code, so its branches leak nothing.
function sboxTable(xt: Bytes): Bytes {
  const sbox = alloc(256);
  let p = 1;
  let q = 1;
  for (let k = 0; k < 255; k++) {
    p = p ^ xt[p]; // p * 3
    q = (q ^ (q * 2)) & 0xff; // q / 3, i.e. q * 0xf6: three shift-XORs and a reduction
    q = (q ^ (q * 4)) & 0xff;
    q = (q ^ (q * 16)) & 0xff;
    if ((q & 0x80) !== 0) q = q ^ 0x09;
    sbox[p] = q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4) ^ 0x63;
  }
  sbox[0] = 0x63; // 0 has no inverse; FIPS 197 maps it to 0 before the affine step
  return sbox;
}

// Built by calls marked pure, so that a bundle without portable AES (a board with native AES) drops them.
const XT = /* @__PURE__ */ xtimeTable();
/** The AES S-box. */
const SBOX = /* @__PURE__ */ sboxTable(XT);

function subWord(w: number): number {
  return (
    shl(SBOX[shr(w, 24)], 24) |
    shl(SBOX[shr(w, 16) & 0xff], 16) |
    shl(SBOX[shr(w, 8) & 0xff], 8) |
    SBOX[w & 0xff]
  );
}

/**
 * Expands a 16-byte (AES-128) or 32-byte (AES-256) key into 44 or 60 big-endian round-key words.
 * Throws a string for any other key length (AES-192 is not needed by the protocol).
 */
export function aesExpandKey(key: Bytes): Words {
  if (key.length !== 16 && key.length !== 32) throw "aes: key must be 16 or 32 bytes";
  const nk = fdiv(key.length, 4);
  const total = 4 * (nk + 7);
  const w = words(total);
  for (let i = 0; i < nk; i++) {
    w[i] = shl(key[4 * i], 24) | shl(key[4 * i + 1], 16) | shl(key[4 * i + 2], 8) | key[4 * i + 3];
  }
  let rcon = 1;
  for (let i = nk; i < total; i++) {
    let t = w[i - 1];
    if (i % nk === 0) {
      // RotWord is a byte rotation left, i.e. a word rotation by 8; built from shl/shr, not rotl, so the
      // result is canonical on every target before SubWord indexes with its bytes.
      t = subWord(shl(t, 8) | shr(t, 24)) ^ shl(rcon, 24);
      rcon = XT[rcon];
    } else if (nk === 8 && i % nk === 4) {
      t = subWord(t);
    }
    w[i] = w[i - nk] ^ t;
  }
  return w;
}

// Scratch state for aesEncryptBlock, allocated once: a fresh buffer per block would churn Espruino's
// garbage collector. It is wiped after every block, because the state before the last round together with
// the ciphertext gives the last round key, and the AES-128 key schedule runs backwards from it to the key.
const stateA = /* @__PURE__ */ alloc(16);
const stateB = /* @__PURE__ */ alloc(16);

// One column of a full round: a0..a3 are the column's bytes after SubBytes and ShiftRows. MixColumns is
// written as b_i = a_i ^ t ^ 2(a_i ^ a_{i+1}) with t the XOR of all four, which needs one xtime per byte.
function mixColumn(out: Bytes, o: number, a0: number, a1: number, a2: number, a3: number, k: number): void {
  const t = a0 ^ a1 ^ a2 ^ a3;
  out[o] = a0 ^ t ^ XT[a0 ^ a1] ^ shr(k, 24);
  out[o + 1] = a1 ^ t ^ XT[a1 ^ a2] ^ (shr(k, 16) & 0xff);
  out[o + 2] = a2 ^ t ^ XT[a2 ^ a3] ^ (shr(k, 8) & 0xff);
  out[o + 3] = a3 ^ t ^ XT[a3 ^ a0] ^ (k & 0xff);
}

/**
 * Encrypts the 16 bytes at input[inOff..] with round keys `rk` from aesExpandKey, writing out[outOff..].
 * input and out may be the same buffer, at the same or any other offset.
 */
export function aesEncryptBlock(rk: Words, input: Bytes, inOff: number, out: Bytes, outOff: number): void {
  const nr = fdiv(rk.length, 4) - 1;
  let s = stateA;
  let d = stateB;
  for (let c = 0; c < 4; c++) {
    const k = rk[c];
    const i = inOff + 4 * c;
    s[4 * c] = input[i] ^ shr(k, 24);
    s[4 * c + 1] = input[i + 1] ^ (shr(k, 16) & 0xff);
    s[4 * c + 2] = input[i + 2] ^ (shr(k, 8) & 0xff);
    s[4 * c + 3] = input[i + 3] ^ (k & 0xff);
  }
  for (let r = 1; r < nr; r++) {
    // Row j of output column c comes from input column c + j (ShiftRows), hence the 4, 9, 14 / 8, 13, 2 ...
    mixColumn(d, 0, SBOX[s[0]], SBOX[s[5]], SBOX[s[10]], SBOX[s[15]], rk[4 * r]);
    mixColumn(d, 4, SBOX[s[4]], SBOX[s[9]], SBOX[s[14]], SBOX[s[3]], rk[4 * r + 1]);
    mixColumn(d, 8, SBOX[s[8]], SBOX[s[13]], SBOX[s[2]], SBOX[s[7]], rk[4 * r + 2]);
    mixColumn(d, 12, SBOX[s[12]], SBOX[s[1]], SBOX[s[6]], SBOX[s[11]], rk[4 * r + 3]);
    const t = s;
    s = d;
    d = t;
  }
  // The last round has no MixColumns; it writes straight to `out`, which is safe when out is the input
  // because the input was fully consumed by the first AddRoundKey.
  for (let c = 0; c < 4; c++) {
    const k = rk[4 * nr + c];
    const o = outOff + 4 * c;
    out[o] = SBOX[s[4 * c]] ^ shr(k, 24);
    out[o + 1] = SBOX[s[(4 * c + 5) & 15]] ^ (shr(k, 16) & 0xff);
    out[o + 2] = SBOX[s[(4 * c + 10) & 15]] ^ (shr(k, 8) & 0xff);
    out[o + 3] = SBOX[s[(4 * c + 15) & 15]] ^ (k & 0xff);
  }
  wipe(stateA);
  wipe(stateB);
}
