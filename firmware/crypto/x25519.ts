// X25519 (RFC 7748 section 5): Diffie-Hellman on Curve25519, portable to Node, Espruino and 64-bit Lua.
//
// Field elements mod p = 2^255 - 19 are 16 limbs of 16 bits, a[0] least significant (the tweetnacl
// representation): value = sum a[i] * 2^(16 i). Limbs are signed and may stray a little outside [0, 2^16)
// between operations; only `pack` produces the canonical value.
//
// Why this fits every target (docs/PORTABLE.md rule 6):
// - Stored limbs stay below 2^18 in magnitude, so a `Words` (an Int32Array in JavaScript) holds them.
// - A product column sums up to 571 products of two limbs of at most 2^17 + 76 (see `mul`): below 2^44.
//   That is exact in a JavaScript double (< 2^53) and in a 64-bit Lua integer. Such sums only ever live
//   in local variables, never in a `Words`, so the Int32Array never truncates them. On 32-bit Lua they
//   would wrap, so `x25519Start` refuses to run there (a board with 32-bit Lua uses its native sodium);
//   nothing at load time depends on wide integers, so the module still loads in the same bundle.
// - Carries use `fdiv(v, 65536)`, a floor division that both languages agree on for negative v.
//
// Constant time: the ladder's conditional swap is mask arithmetic, and every branch and index depends
// only on public counters (bit position, chain position), never on a secret bit or limb value.
//
// The ladder is resumable (`x25519Start` / `x25519Step` / `x25519Result`) so a slow board can do a
// few steps between radio events; `x25519` is the same code run to completion.
import { alloc, Bytes, fdiv, INT32_ONLY, shr, words, Words } from "#target";

/** Ladder steps in one X25519: one per bit of the clamped scalar, bits 254 down to 0. */
export const X25519_LADDER_STEPS = 255;
/** Field operations per ladder step: 4 squarings, 5 multiplications, 1 multiplication by a24. */
export const X25519_LADDER_STEP_OPS = 10;

// ---------------------------------------------------------------------------------------------------
// Field arithmetic

/** Scratch for `mul`/`sqr`: their output may alias an input, so columns are carried here first. */
const T = /* @__PURE__ */ words(16);
/** Scratch for `pack`'s trial subtraction of p. */
const M = /* @__PURE__ */ words(16);

function set(o: Words, small: number): void {
  o[0] = small;
  for (let i = 1; i < 16; i++) o[i] = 0;
}

function copy(o: Words, a: Words): void {
  for (let i = 0; i < 16; i++) o[i] = a[i];
}

function add(o: Words, a: Words, b: Words): void {
  for (let i = 0; i < 16; i++) o[i] = a[i] + b[i];
}

function sub(o: Words, a: Words, b: Words): void {
  for (let i = 0; i < 16; i++) o[i] = a[i] - b[i];
}

/**
 * One carry pass over o: adds `c` into limb 0, leaves every limb in [0, 2^16), and returns the carry out
 * of limb 15 (a multiple of 2^256, which the caller folds back in as 38 * carry, since 2^256 = 38 mod p).
 * `c` may be large (up to ~2^33): it is added in a local, never stored unreduced.
 */
function carryPass(o: Words, c: number): number {
  for (let i = 0; i < 16; i++) {
    const v = o[i] + c;
    c = fdiv(v, 65536);
    o[i] = v - c * 65536;
  }
  return c;
}

/**
 * Finishes `mul`/`sqr`: T holds 16 limbs in [0, 2^16) plus `c`, the carry out of limb 15 (|c| < 2^28).
 * The second pass's carry out is -1, 0 or 1 (T + 38c lies in (-2^33, 2^256 + 2^33)), so after folding
 * it back o's limbs are in [0, 2^16) except o[0], in [-38, 2^16 + 38).
 */
function finish(o: Words, c: number): void {
  c = carryPass(T, 38 * c);
  for (let i = 0; i < 16; i++) o[i] = T[i];
  o[0] += 38 * c;
}

/**
 * o = a * b mod p, by product scanning: column k of the 31-column product and column k + 16 (which
 * weighs 2^256 = 38 times column k) are summed in locals and carried at once, so the ~2^43 sums never
 * enter a Words. Inputs are sums or differences of two `mul` outputs: |limb| <= 2^17 + 76, so each
 * column is at most (1 + 38 * 15) * (2^17 + 76)^2 < 2^43.2, plus a carry.
 */
function mul(o: Words, a: Words, b: Words): void {
  let c = 0;
  for (let k = 0; k < 16; k++) {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i <= k; i++) lo += a[i] * b[k - i];
    for (let i = k + 1; i < 16; i++) hi += a[i] * b[k + 16 - i];
    const v = lo + 38 * hi + c;
    c = fdiv(v, 65536);
    T[k] = v - c * 65536;
  }
  finish(o, c);
}

/** o = a^2 mod p: `mul` with each cross product a[i] * a[j], i != j, computed once and doubled. */
function sqr(o: Words, a: Words): void {
  let c = 0;
  for (let k = 0; k < 16; k++) {
    // column k: pairs i < j with i + j = k; column k + 16: pairs i < j with i + j = k + 16
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < k - i; i++) lo += a[i] * a[k - i];
    for (let i = k + 1; i < k + 16 - i; i++) hi += a[i] * a[k + 16 - i];
    lo = 2 * lo;
    hi = 2 * hi;
    if ((k & 1) === 0) {
      // the diagonal terms (k is public, so this branch is too)
      const h = fdiv(k, 2);
      lo += a[h] * a[h];
      hi += a[h + 8] * a[h + 8];
    }
    const v = lo + 38 * hi + c;
    c = fdiv(v, 65536);
    T[k] = v - c * 65536;
  }
  finish(o, c);
}

/** o = a * 121665 mod p (a24 = (486662 - 2) / 4, RFC 7748). Element-wise, so o may alias a. */
function mulA24(o: Words, a: Words): void {
  let c = 0;
  for (let i = 0; i < 16; i++) {
    const v = a[i] * 121665 + c; // |v| < 2^35
    c = fdiv(v, 65536);
    o[i] = v - c * 65536;
  }
  c = carryPass(o, 38 * c);
  o[0] += 38 * c;
}

/** Swaps a and b when bit is 1, leaves them when it is 0, with the same operations either way. */
function cswap(a: Words, b: Words, bit: number): void {
  const mask = -bit; // 0 or all ones
  for (let i = 0; i < 16; i++) {
    const t = mask & (a[i] ^ b[i]);
    a[i] = a[i] ^ t;
    b[i] = b[i] ^ t;
  }
}

/** Decodes a u-coordinate: little-endian, top bit masked (RFC 7748 section 5); values >= p are kept. */
function unpack(o: Words, u: Bytes): void {
  for (let i = 0; i < 16; i++) o[i] = u[2 * i] + 256 * u[2 * i + 1];
  o[15] = o[15] & 0x7fff;
}

/** Encodes the canonical value of a (fully reduced mod p) into 32 little-endian bytes. */
function pack(out: Bytes, a: Words): void {
  copy(T, a);
  // Three passes bring every limb into [0, 2^16) with nothing left over: after the second, the carry
  // out is -1, 0 or 1 and the limbs it would spill into are all 0 or all 0xffff, so the third settles it.
  let c = carryPass(T, 0);
  c = carryPass(T, 38 * c);
  carryPass(T, 38 * c);
  // Now 0 <= T < 2^256 < 3p: subtract p twice, each time keeping the difference unless it borrowed.
  for (let round = 0; round < 2; round++) {
    let borrow = 0;
    for (let i = 0; i < 16; i++) {
      const pi = i === 0 ? 0xffed : i === 15 ? 0x7fff : 0xffff; // limbs of p; i is public
      const v = T[i] - pi - borrow;
      borrow = -fdiv(v, 65536); // 0 or 1
      M[i] = v + borrow * 65536;
    }
    cswap(T, M, 1 - borrow); // T = M when T >= p (no final borrow)
  }
  for (let i = 0; i < 16; i++) {
    out[2 * i] = T[i] & 0xff;
    out[2 * i + 1] = shr(T[i], 8) & 0xff;
  }
}

// ---------------------------------------------------------------------------------------------------
// Inversion chain: z^(p-2) = 1/z in 254 squarings and 11 multiplications (the usual curve25519 chain),
// then one more multiplication by x2 gives the affine u = x2 / z2. It is a table of instructions so the
// work can stop and resume between any two field operations.

// registers of a job named in CHAIN
const R_Z = 0; // the ladder's z2 (input)
const R_X = 1; // the ladder's x2
const R_T0 = 2;
const R_T1 = 3;
const R_T2 = 4;
const R_T3 = 5;

const CHAIN_MAX = 23;

function buildChain(): Words {
  const c = words(4 * CHAIN_MAX);
  let i = 0;
  const op = (dst: number, src1: number, src2: number, n: number): void => {
    c[i] = dst;
    c[i + 1] = src1;
    c[i + 2] = src2;
    c[i + 3] = n;
    i += 4;
  };
  // exponents in the comments are of z
  op(R_T0, R_Z, 0, 1); // t0 = 2
  op(R_T1, R_T0, 0, 2); // t1 = 8
  op(R_T1, R_Z, R_T1, 0); // t1 = 9
  op(R_T0, R_T0, R_T1, 0); // t0 = 11
  op(R_T2, R_T0, 0, 1); // t2 = 22
  op(R_T1, R_T1, R_T2, 0); // t1 = 31 = 2^5 - 1
  op(R_T2, R_T1, 0, 5); // t2 = 2^10 - 2^5
  op(R_T1, R_T2, R_T1, 0); // t1 = 2^10 - 1
  op(R_T2, R_T1, 0, 10); // t2 = 2^20 - 2^10
  op(R_T2, R_T2, R_T1, 0); // t2 = 2^20 - 1
  op(R_T3, R_T2, 0, 20); // t3 = 2^40 - 2^20
  op(R_T2, R_T3, R_T2, 0); // t2 = 2^40 - 1
  op(R_T2, R_T2, 0, 10); // t2 = 2^50 - 2^10
  op(R_T1, R_T2, R_T1, 0); // t1 = 2^50 - 1
  op(R_T2, R_T1, 0, 50); // t2 = 2^100 - 2^50
  op(R_T2, R_T2, R_T1, 0); // t2 = 2^100 - 1
  op(R_T3, R_T2, 0, 100); // t3 = 2^200 - 2^100
  op(R_T2, R_T3, R_T2, 0); // t2 = 2^200 - 1
  op(R_T2, R_T2, 0, 50); // t2 = 2^250 - 2^50
  op(R_T1, R_T2, R_T1, 0); // t1 = 2^250 - 1
  op(R_T1, R_T1, 0, 5); // t1 = 2^255 - 2^5
  op(R_T1, R_T1, R_T0, 0); // t1 = 2^255 - 21 = p - 2, so t1 = 1/z
  op(R_T1, R_T1, R_X, 0); // t1 = x2 / z2 (the CHAIN_MAX-th)
  return c;
}

/**
 * Instructions of 4 words: dst, src1, src2, n. n > 0: dst = src1^(2^n) (n squarings); n = 0: dst = src1 * src2.
 * Built by a call marked pure (as every table here), so that a bundle without X25519 (a psk board's) drops it.
 */
const CHAIN = /* @__PURE__ */ buildChain();

/** Field operations in the chain, plus the ladder's when `ladder` (one whole X25519). */
function chainOps(c: Words, ladder: boolean): number {
  let ops = ladder ? X25519_LADDER_STEPS * X25519_LADDER_STEP_OPS : 0;
  for (let i = 0; i < CHAIN_MAX; i++) ops += c[4 * i + 3] === 0 ? 1 : c[4 * i + 3];
  return ops;
}

/** Field operations of the final inversion and multiplication by x2 (266). */
export const X25519_INVERT_OPS = /* @__PURE__ */ chainOps(CHAIN, false);
/** Field operations of one whole X25519, the unit of `x25519Step`'s budget (2816). */
export const X25519_FIELD_OPS = /* @__PURE__ */ chainOps(CHAIN, true);

// ---------------------------------------------------------------------------------------------------
// The resumable computation

/** The state of one X25519 in progress. Holds secrets until finished, when they are wiped. */
export type X25519Job = {
  k: Bytes; // clamped scalar
  x1: Words;
  x2: Words;
  z2: Words;
  x3: Words;
  z3: Words;
  t0: Words;
  t1: Words;
  t2: Words;
  t3: Words;
  swap: number; // RFC 7748's `swap`: the previous ladder bit
  bit: number; // next scalar bit for the ladder, 254 down to 0; -1 once the ladder is done
  pc: number; // next CHAIN instruction
  rep: number; // squarings already done in the current CHAIN instruction
  done: boolean;
  out: Bytes;
};

function reg(j: X25519Job, r: number): Words {
  if (r === R_Z) return j.z2;
  if (r === R_X) return j.x2;
  if (r === R_T0) return j.t0;
  if (r === R_T1) return j.t1;
  if (r === R_T2) return j.t2;
  return j.t3;
}

// ladder temporaries, shared: a step always runs to its end before another job's can start
const A = /* @__PURE__ */ words(16);
const AA = /* @__PURE__ */ words(16);
const B = /* @__PURE__ */ words(16);
const BB = /* @__PURE__ */ words(16);
const C = /* @__PURE__ */ words(16);
const D = /* @__PURE__ */ words(16);
const E = /* @__PURE__ */ words(16);
const DA = /* @__PURE__ */ words(16);
const CB = /* @__PURE__ */ words(16);

/** One step of the Montgomery ladder (RFC 7748 section 5), on scalar bit j.bit. */
function ladderStep(j: X25519Job): void {
  const t = j.bit;
  const kt = shr(j.k[fdiv(t, 8)], t & 7) & 1;
  j.swap = j.swap ^ kt;
  cswap(j.x2, j.x3, j.swap);
  cswap(j.z2, j.z3, j.swap);
  j.swap = kt;
  add(A, j.x2, j.z2);
  sqr(AA, A);
  sub(B, j.x2, j.z2);
  sqr(BB, B);
  sub(E, AA, BB);
  add(C, j.x3, j.z3);
  sub(D, j.x3, j.z3);
  mul(DA, D, A);
  mul(CB, C, B);
  add(j.x3, DA, CB);
  sqr(j.x3, j.x3); // x3 = (DA + CB)^2
  sub(j.z3, DA, CB);
  sqr(j.z3, j.z3);
  mul(j.z3, j.z3, j.x1); // z3 = x1 * (DA - CB)^2
  mul(j.x2, AA, BB); // x2 = AA * BB
  mulA24(j.z2, E);
  add(j.z2, j.z2, AA);
  mul(j.z2, j.z2, E); // z2 = E * (AA + a24 * E)
  j.bit = t - 1;
  if (j.bit < 0) {
    cswap(j.x2, j.x3, j.swap);
    cswap(j.z2, j.z3, j.swap);
  }
}

/** One field operation of the inversion chain. */
function chainStep(j: X25519Job): void {
  const i = 4 * j.pc;
  const dst = reg(j, CHAIN[i]);
  const n = CHAIN[i + 3];
  if (n === 0) {
    mul(dst, reg(j, CHAIN[i + 1]), reg(j, CHAIN[i + 2]));
    j.pc++;
    return;
  }
  sqr(dst, j.rep === 0 ? reg(j, CHAIN[i + 1]) : dst);
  j.rep++;
  if (j.rep === n) {
    j.rep = 0;
    j.pc++;
  }
}

function wipeJob(j: X25519Job): void {
  for (let i = 0; i < 32; i++) j.k[i] = 0;
  for (let r = R_Z; r <= R_T3; r++) set(reg(j, r), 0);
  set(j.x1, 0);
  set(j.x3, 0);
  set(j.z3, 0);
}

/** Begins X25519(scalar, u); nothing is computed until `x25519Step`. Both inputs are 32 bytes. */
export function x25519Start(scalar: Bytes, u: Bytes): X25519Job {
  // 16-bit limb products need integers of 44 bits: refuse rather than return a wrong key
  if (INT32_ONLY) throw "x25519: needs 64-bit integers (use the board's sodium)";
  if (scalar.length !== 32 || u.length !== 32) throw "x25519: scalar and u must be 32 bytes";
  const k = alloc(32);
  for (let i = 0; i < 32; i++) k[i] = scalar[i] & 0xff;
  // clamp (RFC 7748 section 5): a multiple of the cofactor 8, with bit 254 set and bit 255 clear
  k[0] = k[0] & 248;
  k[31] = (k[31] & 127) | 64;
  const j: X25519Job = {
    k: k,
    x1: words(16),
    x2: words(16),
    z2: words(16),
    x3: words(16),
    z3: words(16),
    t0: words(16),
    t1: words(16),
    t2: words(16),
    t3: words(16),
    swap: 0,
    bit: X25519_LADDER_STEPS - 1,
    pc: 0,
    rep: 0,
    done: false,
    out: alloc(32),
  };
  unpack(j.x1, u);
  set(j.x2, 1); // z2 = 0
  copy(j.x3, j.x1);
  set(j.z3, 1);
  return j;
}

/**
 * Advances a job by at most `ladderSteps` ladder steps, or in the inversion by at most `ladderSteps * 10`
 * field operations (a ladder step is 10 of them, so both are one budget): the time of a call is bounded
 * by about `ladderSteps` ladder steps. Returns true once the result is ready (and then at once on
 * further calls). `ladderSteps` below 1 counts as 1, so every call makes progress.
 * Calls needed for a whole X25519: `x25519StepCalls(ladderSteps)`.
 */
export function x25519Step(job: X25519Job, ladderSteps: number): boolean {
  if (job.done) return true;
  let budget = X25519_LADDER_STEP_OPS * (ladderSteps >= 1 ? fdiv(ladderSteps, 1) : 1);
  while (job.bit >= 0 && budget >= X25519_LADDER_STEP_OPS) {
    ladderStep(job);
    budget -= X25519_LADDER_STEP_OPS;
  }
  while (job.bit < 0 && job.pc < CHAIN_MAX && budget > 0) {
    chainStep(job);
    budget--;
  }
  if (job.pc < CHAIN_MAX) return false;
  pack(job.out, job.t1);
  wipeJob(job);
  job.done = true;
  return true;
}

/** Number of `x25519Step(job, ladderSteps)` calls that one X25519 takes, for schedules and cost reports. */
export function x25519StepCalls(ladderSteps: number): number {
  const perCall = X25519_LADDER_STEP_OPS * (ladderSteps >= 1 ? fdiv(ladderSteps, 1) : 1);
  return fdiv(X25519_FIELD_OPS + perCall - 1, perCall);
}

/** The 32-byte result of a finished job. */
export function x25519Result(job: X25519Job): Bytes {
  if (!job.done) throw "x25519: job not finished";
  const out = alloc(32);
  for (let i = 0; i < 32; i++) out[i] = job.out[i];
  return out;
}

/** X25519(scalar, u) of RFC 7748: the scalar is clamped and u's top bit ignored. 32 bytes each. */
export function x25519(scalar: Bytes, u: Bytes): Bytes {
  const job = x25519Start(scalar, u);
  while (!x25519Step(job, X25519_LADDER_STEPS)) {
    // two calls: the ladder, then the inversion
  }
  return x25519Result(job);
}

/** X25519(scalar, 9): the public key of a secret scalar. */
export function x25519Base(scalar: Bytes): Bytes {
  const nine = alloc(32);
  nine[0] = 9;
  return x25519(scalar, nine);
}
