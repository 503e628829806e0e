// AES-CCM on the host with OpenSSL contexts kept per key: the gateway's per-record cipher.
//
// node:crypto makes one cipher context per CCM operation (createCipheriv sets up OpenSSL's context and
// expands the key every time), and for a 20-byte reading that set-up costs several times the AES itself.
// CCM is CTR encryption plus a CBC-MAC (RFC 3610), and neither needs a fresh context:
//   - the counter blocks A_0..A_k go through a long-lived AES-ECB context in one update() call;
//   - the CBC-MAC goes through a long-lived AES-CBC context in one update() call. A CBC context carries on
//     from its last ciphertext block, so the first block fed in is B_0 XOR that block (`chain`): the
//     context then computes E(B_0) as a fresh CBC-MAC would, and its last output block is the MAC T.
// Two native calls per record instead of a context's set-up, AAD, update, final and tag calls. The tag is
// compared in constant time, and plaintext leaves open() only once it verified (it is wiped otherwise).
// Records go further (openSeq/sealSeq): their nonce is the IV XOR the sequence number, and the numbers of
// one direction come one after the other, so the counter blocks of the next few numbers are computed in
// the same ECB call (up to AHEAD of them, growing while the numbers do come in order): about one native
// call per record. A keystream is never used for two different messages: a sequence number is sealed once.
// The bytes are RFC 3610's: test/host/crypto/ccm.test.ts holds them equal to OpenSSL's CCM and to the
// portable CCM, and they travel to boards that run the portable one.
//
// A key's first operation takes the one-shot path: a key used once (a handshake's) costs no contexts.
// Each key's two contexts hold about 2 KiB outside the JS heap, so a fleet of 100,000 devices (a key per
// direction) would hold hundreds of MB: at most LIVE_MAX keys keep contexts (a clock, second chance,
// picks which lose theirs; they are made again at their next use). Entries are weak references, so a key
// dropped by its SA (a rekey) leaves with its contexts at the next collection, as a one-shot context would.
// When the keys in use are more than the table holds, making contexts at every use would cost more than
// the one-shot path: while more than a quarter of the operations of a window find their key without
// contexts, such a key takes the one-shot path (same bytes), and one in BYPASS_ADMIT of them gets contexts.
import { createCipheriv, type Cipher } from "node:crypto";
import type { Aead } from "../../firmware/record/record";
import { SealedAhead } from "./sealed-ahead";

const ZERO_BLOCK = Buffer.alloc(16);
const EMPTY = new Uint8Array(0);

/** Keys that keep live contexts at most (about 2 KiB each). */
export const CCM_LIVE_MAX = 16384;

let liveMax = CCM_LIVE_MAX;
const live: WeakRef<ReusedCcm>[] = [];
let hand = 0;

const WINDOW = 4096;
const BYPASS_ADMIT = 16;
let windowOps = 0;
let windowMisses = 0;
let thrashing = false;
const counts = { made: 0, bypassed: 0 };

/** Keys given contexts, and operations that took the one-shot path because the table was thrashing. */
export function ccmStats(): { made: number; bypassed: number } {
  return { ...counts };
}

/** For tests: a smaller bound, to exercise eviction. Returns the previous one. */
export function setCcmLiveMax(n: number): number {
  const before = liveMax;
  liveMax = Math.max(1, n);
  while (live.length > liveMax) live.pop()?.deref()?.release();
  hand = 0;
  return before;
}

/** Keys holding contexts now (for tests and reports). */
export function ccmLiveCount(): number {
  let n = 0;
  for (const w of live) if (w.deref()?.holdsContexts) n++;
  return n;
}

/** Writes `count` CCM counter blocks A_first.. for `nonce` at a[o..] (flags L-1, nonce, counter in L bytes). */
function putCounters(a: Uint8Array, o: number, nonce: Uint8Array, first: number, count: number): void {
  const nl = nonce.length;
  for (let b = first; b < first + count; b++, o += 16) putBlock(a, o, 14 - nl, nonce, b);
}

/** One formatted block at a[o..]: a flags byte, the nonce, then `tail` big-endian in the bytes left. */
function putBlock(a: Uint8Array, o: number, flags: number, nonce: Uint8Array, tail: number): void {
  const nl = nonce.length;
  a[o] = flags;
  for (let j = 0; j < nl; j++) a[o + 1 + j] = nonce[j];
  let v = tail;
  for (let j = 15; j > nl; j--) {
    a[o + j] = v & 0xff;
    v >>>= 8;
  }
}

function admit(c: ReusedCcm, self: WeakRef<ReusedCcm>): void {
  if (live.length < liveMax) {
    live.push(self);
    return;
  }
  // Second chance: a key used since the hand last passed keeps its contexts once more.
  for (;;) {
    const v = live[hand].deref();
    if (v !== undefined && v.holdsContexts && v.ref) {
      v.ref = false;
      hand = (hand + 1) % live.length;
      continue;
    }
    v?.release();
    live[hand] = self;
    hand = (hand + 1) % live.length;
    return;
  }
}

/** Sequence numbers whose counter blocks one ECB call computes ahead, at most. */
export const AHEAD = 16;
/** Counter blocks kept per sequence number: A_0 (masks the tag) and A_1, A_2 (payloads up to 32 bytes). */
const KS_BLOCKS = 3;
const KS_BYTES = 16 * KS_BLOCKS;

// Scratch buffers for the blocks fed to OpenSSL, one per size in blocks up to SCRATCH_BLOCKS (a view made
// per call would cost an allocation): every call reads its input synchronously, before returning.
const SCRATCH_BLOCKS = 64;
const scratches: Buffer[] = [];
for (let b = 0; b <= SCRATCH_BLOCKS; b++) scratches.push(Buffer.alloc(16 * b));

/** A scratch buffer of exactly `blocks` blocks (a fresh one beyond SCRATCH_BLOCKS). */
function scratchOf(blocks: number): Buffer {
  return blocks <= SCRATCH_BLOCKS ? scratches[blocks] : Buffer.allocUnsafe(16 * blocks);
}

// Plaintexts opened and records sealed are views into a shared slab, each its own bytes (views never
// overlap, and no byte of a slab is handed out twice): a fresh small Uint8Array costs about 250 bytes of
// JS heap (its own ArrayBuffer and store), a view about 100, and the gateway opens a reading and seals its
// ACK per reading, so this is a fifth of what a reading allocates, and as many fewer scavenges. A slab
// lives as long as any of its views; nothing keeps a plaintext or a record for long (the gateway copies
// a reading into its backbone queue, a link writes a record out), and one kept pins at most SLAB bytes.
const SLAB = 8192;
const SLAB_MAX_VIEW = 256;
let slab = new ArrayBuffer(SLAB);
let slabAt = 0;

/** n zero bytes of their own: a view into the slab for small n. */
function slabBytes(n: number): Uint8Array {
  if (n > SLAB_MAX_VIEW) return new Uint8Array(n);
  if (slabAt + n > SLAB) {
    slab = new ArrayBuffer(SLAB);
    slabAt = 0;
  }
  const v = new Uint8Array(slab, slabAt, n);
  slabAt += n;
  return v;
}

const nonceScratches: Uint8Array[] = [];
for (let n = 0; n <= 16; n++) nonceScratches.push(new Uint8Array(n));

/** iv XOR seq, right-aligned (the record layer's nonce), in a scratch buffer valid until the next call. */
function seqNonce(iv: Uint8Array, seq: number): Uint8Array {
  const n = iv.length;
  const out = nonceScratches[n];
  for (let i = 0; i < n - 4; i++) out[i] = iv[i];
  out[n - 4] = iv[n - 4] ^ ((seq >>> 24) & 0xff);
  out[n - 3] = iv[n - 3] ^ ((seq >>> 16) & 0xff);
  out[n - 2] = iv[n - 2] ^ ((seq >>> 8) & 0xff);
  out[n - 1] = iv[n - 1] ^ (seq & 0xff);
  return out;
}

/**
 * AES-CCM with the key bound in, on reused OpenSSL contexts. seal/open have the Aead shape; sealInto and
 * openAt work on parts of larger buffers (a record's header as aad, its body in place) without copies.
 * Inputs the fast path does not cover (a nonce of another length, aad of 0xFF00 bytes or more, nothing
 * to authenticate at all) go to `fallback`, which gives the same bytes.
 */
export class ReusedCcm implements Aead {
  readonly tagLen: number;
  readonly nonceLen: number;
  /** Second-chance bit for the clock. */
  ref = false;
  private readonly L: number;
  private readonly maxLength: number;
  private readonly flags0: number;
  private ecb: Cipher | undefined;
  private cbc: Cipher | undefined;
  /** The CBC context's last ciphertext block (its running IV). */
  private chain = EMPTY;
  /** Where the MAC of the last mac() call is in the buffer it returned. */
  private chainAt = 0;
  /** Its entry in the table, made with its first contexts (a WeakRef keeps its target alive until the current job ends). */
  private self: WeakRef<ReusedCcm> | undefined;
  /** Counter blocks computed ahead for sequence numbers [ksBase, ksBase + ksCount) under ksIv. */
  private ks: Uint8Array | undefined;
  private ksIv: Uint8Array | undefined;
  private ksBase = 0;
  private ksCount = 0;
  private ahead = 1;
  /** Where the keystream of the current operation starts in the buffer keystream()/seqKeystream() returned. */
  private ksAt = 0;
  /** Records sealed ahead (sealAhead). */
  private sealed: SealedAhead | undefined;
  /** The key was used once already (contexts are made from its second operation on). */
  private used = false;

  /** The one-shot path, made at its first use (most keys of a large fleet take it only now and then). */
  private oneShot: Aead | undefined;

  constructor(private readonly key: Uint8Array, tagLen: number, nonceLen: number, private readonly makeFallback: () => Aead) {
    if (tagLen < 4 || tagLen > 16 || (tagLen & 1) !== 0) throw new RangeError(`CCM tag length must be 4, 6, ..., 16, got ${tagLen}`);
    if (nonceLen < 7 || nonceLen > 13) throw new RangeError(`CCM nonce length must be 7 to 13, got ${nonceLen}`);
    if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError(`AES keys are 16, 24 or 32 bytes, got ${key.length}`);
    this.tagLen = tagLen;
    this.nonceLen = nonceLen;
    this.L = 15 - nonceLen;
    this.maxLength = this.L >= 4 ? 0x7fffffff : 2 ** (8 * this.L) - 1;
    this.flags0 = (((tagLen - 2) >>> 1) << 3) | (this.L - 1);
  }

  get holdsContexts(): boolean {
    return this.ecb !== undefined;
  }

  /** Drops the contexts (made again at the next use). */
  release(): void {
    this.ecb = undefined;
    this.cbc = undefined;
    this.chain = EMPTY;
    this.chainAt = 0;
    this.ks = undefined;
    this.ksIv = undefined;
    this.ksCount = 0;
  }

  // (Methods, not closures made per key: a fleet of 100,000 devices has 200,000 keys.)
  recordBytes(n: number): Uint8Array {
    return slabBytes(n);
  }

  // (The one-shot path straight from here, not through sealInto/openAt: a handshake's keys are used once,
  // and a view of the aad and a copy of the output cost that use as much as the context's set-up.)
  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
    if (!this.covers(nonce.length, aad.length, pt.length) || !this.contexts()) return this.fallback.seal(nonce, aad, pt);
    const out = new Uint8Array(pt.length + this.tagLen);
    this.sealWith(nonce, this.keystream(nonce, pt.length), aad, aad.length, pt, out, 0);
    return out;
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
    const n = sealed.length - this.tagLen;
    if (n < 0) return undefined;
    if (!this.covers(nonce.length, aad.length, n) || !this.contexts()) return this.fallback.open(nonce, aad, sealed);
    return this.openWith(nonce, this.keystream(nonce, n), aad, aad.length, sealed, 0, n);
  }

  private get fallback(): Aead {
    return (this.oneShot ??= this.makeFallback());
  }

  /** True when sealInto/openAt take these sizes (otherwise use seal/open, which fall back). */
  covers(nonceLen: number, aadLen: number, n: number): boolean {
    return nonceLen === this.nonceLen && aadLen < 0xff00 && n <= this.maxLength && aadLen + n > 0;
  }

  /**
   * Seals pt with aad = aadBuf[0, aadLen) into out[at, at + pt.length + tagLen) (ciphertext, then tag).
   * The sizes must pass covers(). out may hold the aad itself before `at` (a record's header).
   */
  sealInto(nonce: Uint8Array, aadBuf: Uint8Array, aadLen: number, pt: Uint8Array, out: Uint8Array, at: number): void {
    if (!this.contexts()) return void out.set(this.fallback.seal(nonce, aadBuf.subarray(0, aadLen), pt), at);
    this.sealWith(nonce, this.keystream(nonce, pt.length), aadBuf, aadLen, pt, out, at);
  }

  /**
   * Opens src[ct, ct + n) followed by its tag, with aad = aadBuf[0, aadLen): the plaintext (a fresh
   * array), or undefined when the tag does not verify. The sizes must pass covers().
   */
  openAt(nonce: Uint8Array, aadBuf: Uint8Array, aadLen: number, src: Uint8Array, ct: number, n: number): Uint8Array | undefined {
    if (!this.contexts()) return this.fallback.open(nonce, aadBuf.subarray(0, aadLen), src.subarray(ct, ct + n + this.tagLen));
    return this.openWith(nonce, this.keystream(nonce, n), aadBuf, aadLen, src, ct, n);
  }

  /**
   * sealInto for the nonce iv XOR seq (right-aligned): the counter blocks come computed ahead, and the
   * record itself when sealAhead() made it (the record layer's Aead.sealSeq). Any sizes.
   */
  sealSeq(iv: Uint8Array, seq: number, aadBuf: Uint8Array, aadLen: number, pt: Uint8Array, out: Uint8Array, at: number): void {
    if (this.sealed !== undefined && this.sealed.take(iv, seq, aadBuf, aadLen, pt, out, at, this.tagLen)) return;
    if (!this.covers(iv.length, aadLen, pt.length) || !this.contexts()) return void out.set(this.fallback.seal(seqNonce(iv, seq), aadBuf.subarray(0, aadLen), pt), at);
    const ks = this.seqKeystream(iv, seq, pt.length);
    this.sealWith(seqNonce(iv, seq), ks, aadBuf, aadLen, pt, out, at);
  }

  /** openAt for the nonce iv XOR seq (right-aligned): the counter blocks come computed ahead (Aead.openSeq). Any sizes. */
  openSeq(iv: Uint8Array, seq: number, aadBuf: Uint8Array, aadLen: number, src: Uint8Array, ct: number, n: number): Uint8Array | undefined {
    if (!this.covers(iv.length, aadLen, n) || !this.contexts()) return this.fallback.open(seqNonce(iv, seq), aadBuf.subarray(0, aadLen), src.subarray(ct, ct + n + this.tagLen));
    const ks = this.seqKeystream(iv, seq, n);
    return this.openWith(seqNonce(iv, seq), ks, aadBuf, aadLen, src, ct, n);
  }

  /**
   * Seals `count` records ahead (SealedAhead), record e under the nonce iv XOR (seq + e), its aad
   * aads[e * aadLen..] and plaintext pts[e * n..]: sealSeq hands each out if asked for exactly it. Only
   * on a key holding its contexts (else false: making them for this would cost more than it saves).
   */
  sealAhead(iv: Uint8Array, seq: number, count: number, aads: Uint8Array, aadLen: number, pts: Uint8Array, n: number): boolean {
    if (!this.holdsContexts || !this.covers(iv.length, aadLen, n)) return false;
    (this.sealed ??= new SealedAhead()).seal(this, iv, seq, count, aads, aadLen, pts, n);
    return true;
  }

  /** Whether seq under iv was sealed ahead. */
  sealedAhead(iv: Uint8Array, seq: number): boolean {
    return this.sealed !== undefined && this.sealed.holds(iv, seq);
  }

  /**
   * Seals `count` messages of n bytes at once, message e under the nonce iv XOR (seq + e): record e takes
   * recs[e * stride, (e + 1) * stride) and holds its aad first (aadLen bytes, written by the caller), then
   * receives ciphertext || tag; the plaintexts are pts[e * n, (e + 1) * n). The CBC-MACs of all of them go
   * through the ECB context block by block, one native call per block position (the first also makes the
   * counter blocks), so `count` records cost as many calls as one record has blocks. For records sealed
   * ahead of their time (the gateway's ACKs): the caller uses each one, if at all, only for its sequence
   * number, which is sealed once. The sizes must pass covers().
   */
  sealBatch(iv: Uint8Array, seq: number, count: number, recs: Uint8Array, stride: number, aadLen: number, pts: Uint8Array, n: number): void {
    if (!this.contexts()) {
      for (let e = 0; e < count; e++) {
        const rec = e * stride;
        recs.set(this.fallback.seal(seqNonce(iv, (seq + e) >>> 0), recs.subarray(rec, rec + aadLen), pts.subarray(e * n, (e + 1) * n)), rec + aadLen);
      }
      return;
    }
    const aadBlocks = aadLen === 0 ? 0 : (aadLen + 2 + 15) >>> 4;
    const msgBlocks = (n + 15) >>> 4;
    const macBlocks = 1 + aadBlocks + msgBlocks;
    const ctrBlocks = 1 + msgBlocks;
    // Call 1: B_0 of every message, then the counter blocks of every message.
    const first = scratchOf(count * (1 + ctrBlocks));
    for (let e = 0; e < count; e++) {
      const nonce = seqNonce(iv, (seq + e) >>> 0);
      putBlock(first, e * 16, (aadLen > 0 ? 64 : 0) | this.flags0, nonce, n);
      putCounters(first, (count + e * ctrBlocks) * 16, nonce, 0, ctrBlocks);
    }
    const out1 = this.ecb!.update(first);
    // X holds each message's CBC state; the formatted aad and plaintext blocks are XORed in, one position a call.
    let x: Uint8Array = out1;
    for (let pos = 1; pos < macBlocks; pos++) {
      const layer = scratchOf(count);
      for (let e = 0; e < count; e++) {
        const o = e * 16;
        const rec = e * stride;
        for (let j = 0; j < 16; j++) {
          // Byte j of block `pos` of message e: the aad's 2-byte length, the aad, zeros, the plaintext, zeros.
          const i = (pos - 1) * 16 + j;
          let b = 0;
          if (pos <= aadBlocks) {
            if (i === 0) b = aadLen >>> 8;
            else if (i === 1) b = aadLen & 0xff;
            else if (i - 2 < aadLen) b = recs[rec + i - 2];
          } else {
            const k = (pos - 1 - aadBlocks) * 16 + j;
            if (k < n) b = pts[e * n + k];
          }
          layer[o + j] = x[o + j] ^ b;
        }
      }
      x = this.ecb!.update(layer);
    }
    for (let e = 0; e < count; e++) {
      const ks = (count + e * ctrBlocks) * 16;
      const at = e * stride + aadLen;
      for (let i = 0; i < n; i++) recs[at + i] = pts[e * n + i] ^ out1[ks + 16 + i];
      for (let j = 0; j < this.tagLen; j++) recs[at + n + j] = x[e * 16 + j] ^ out1[ks + j];
    }
  }

  private sealWith(nonce: Uint8Array, ks: Uint8Array, aadBuf: Uint8Array, aadLen: number, pt: Uint8Array, out: Uint8Array, at: number): void {
    const n = pt.length;
    const k = this.ksAt;
    for (let i = 0; i < n; i++) out[at + i] = pt[i] ^ ks[k + 16 + i];
    const mac = this.mac(nonce, aadBuf, aadLen, pt, 0, n);
    const m = this.chainAt;
    for (let j = 0; j < this.tagLen; j++) out[at + n + j] = mac[m + j] ^ ks[k + j];
  }

  private openWith(nonce: Uint8Array, ks: Uint8Array, aadBuf: Uint8Array, aadLen: number, src: Uint8Array, ct: number, n: number): Uint8Array | undefined {
    const k = this.ksAt;
    const pt = slabBytes(n);
    for (let i = 0; i < n; i++) pt[i] = src[ct + i] ^ ks[k + 16 + i];
    const mac = this.mac(nonce, aadBuf, aadLen, pt, 0, n);
    const m = this.chainAt;
    let diff = 0;
    for (let j = 0; j < this.tagLen; j++) diff |= mac[m + j] ^ ks[k + j] ^ src[ct + n + j];
    if (diff !== 0) {
      pt.fill(0); // the MAC covers the plaintext, so it was decrypted first; none of it leaves
      return undefined;
    }
    return pt;
  }

  /** Makes sure the key has its contexts; false when this operation should take the one-shot path instead. */
  private contexts(): boolean {
    if (++windowOps >= WINDOW) {
      thrashing = windowMisses * 4 > windowOps;
      windowOps = windowMisses = 0;
    }
    if (this.ecb === undefined) {
      // A key's first operation takes the one-shot path: keys used once (a handshake's, a junk hello's)
      // never cost contexts, nor a place in the table.
      if (!this.used) {
        this.used = true;
        return false;
      }
      windowMisses++;
      if (thrashing && live.length >= liveMax && (windowMisses % BYPASS_ADMIT) !== 0) {
        counts.bypassed++;
        return false;
      }
      admit(this, (this.self ??= new WeakRef(this)));
      counts.made++;
      const cipher = `aes-${this.key.length * 8}`;
      this.ecb = createCipheriv(`${cipher}-ecb`, this.key, null).setAutoPadding(false);
      this.cbc = createCipheriv(`${cipher}-cbc`, this.key, ZERO_BLOCK).setAutoPadding(false);
      this.chain = new Uint8Array(16);
      this.chainAt = 0;
    }
    this.ref = true;
    return true;
  }

  /**
   * The counter blocks for the nonce iv XOR seq and a message of n bytes, at this.ksAt: from the blocks
   * computed ahead when seq is among them, else computed now for seq and the next `ahead` numbers (more
   * of them each time the numbers come in order, fewer when they jump).
   */
  private seqKeystream(iv: Uint8Array, seq: number, n: number): Uint8Array {
    if (n > 16 * (KS_BLOCKS - 1)) return this.keystream(seqNonce(iv, seq), n);
    const cur = this.ks;
    if (cur !== undefined && this.ksIv === iv && seq >= this.ksBase && seq - this.ksBase < this.ksCount) {
      this.ksAt = (seq - this.ksBase) * KS_BYTES;
      return cur;
    }
    if (cur !== undefined && this.ksIv === iv && seq === this.ksBase + this.ksCount) this.ahead = Math.min(AHEAD, this.ahead * 2);
    else this.ahead = Math.max(1, this.ahead >>> 1);
    const count = this.ahead;
    const a = scratchOf(count * KS_BLOCKS);
    for (let e = 0; e < count; e++) putCounters(a, e * KS_BYTES, seqNonce(iv, (seq + e) >>> 0), 0, KS_BLOCKS);
    // Kept in a buffer of the key's own, reused: the call's fresh output dies young (cheap for the GC),
    // where keeping it would make every window a long-lived allocation.
    const out = this.ecb!.update(a);
    let ks = cur;
    if (ks === undefined) this.ks = ks = new Uint8Array(AHEAD * KS_BYTES);
    ks.set(out);
    this.ksIv = iv;
    this.ksBase = seq;
    this.ksCount = count;
    this.ksAt = 0;
    return ks;
  }

  /** E(A_0) || E(A_1) || ... for a message of n bytes (A_0's block first: it masks the tag), at this.ksAt = 0. */
  private keystream(nonce: Uint8Array, n: number): Buffer {
    this.ksAt = 0;
    const blocks = 1 + ((n + 15) >>> 4);
    const a = scratchOf(blocks);
    putCounters(a, 0, nonce, 0, blocks);
    return this.ecb!.update(a);
  }

  /**
   * The CBC-MAC T of RFC 3610 2.2 over the nonce, aad = aadBuf[0, aadLen) and msg[off, off + n): returns
   * the buffer holding it, at this.chainAt (16 bytes); a copy is kept as the CBC context's running IV.
   */
  private mac(nonce: Uint8Array, aadBuf: Uint8Array, aadLen: number, msg: Uint8Array, off: number, n: number): Uint8Array {
    const aadBlocks = aadLen === 0 ? 0 : (aadLen + 2 + 15) >>> 4;
    const total = (1 + aadBlocks + ((n + 15) >>> 4)) * 16;
    const m = scratchOf(total >>> 4);
    const c = this.chain;
    // B_0, XORed with the context's running IV so that the context computes E(B_0).
    putBlock(m, 0, (aadLen > 0 ? 64 : 0) | this.flags0, nonce, n);
    for (let j = 0; j < 16; j++) m[j] ^= c[j];
    let o = 16;
    if (aadLen > 0) {
      m[16] = aadLen >>> 8;
      m[17] = aadLen & 0xff;
      if (aadLen <= 64) for (let j = 0; j < aadLen; j++) m[18 + j] = aadBuf[j];
      else m.set(aadBuf.subarray(0, aadLen), 18);
      o = 16 + aadBlocks * 16;
      for (let j = 18 + aadLen; j < o; j++) m[j] = 0;
    }
    if (n <= 64) {
      for (let j = 0; j < n; j++) m[o + j] = msg[off + j];
      for (let j = o + n; j < total; j++) m[j] = 0;
    } else {
      m.set(msg.subarray(off, off + n), o);
      m.fill(0, o + n, total);
    }
    const out = this.cbc!.update(m);
    const at = total - 16;
    for (let j = 0; j < 16; j++) c[j] = out[at + j];
    this.chainAt = at;
    return out;
  }
}
