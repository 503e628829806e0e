// The host's record path: the same bytes as firmware/record/record.ts (tests hold them equal), without the
// portable code's per-record copies, for the gateway's hot loop. sealFast/openFast make one node:crypto
// cipher context per record (that call is the floor `npm run bench` measures against); openCompact and
// sealCompact run on a key's reused contexts (host/crypto/ccm.ts), which cost less than that floor.
import { createCipheriv, createDecipheriv, type CipherCCMTypes, type CipherGCMTypes } from "node:crypto";
import { FORMAT_COMPACT, FORMAT_EXTREME, FORMAT_LARGE, HEADER_SIZE, SPI_NEGOTIATION } from "../../firmware/record/header";
import type { ReusedCcm } from "../crypto/ccm";

export type HostSuite = { cipher: CipherCCMTypes | CipherGCMTypes; tagLen: number };
export const HOST_CCM8: HostSuite = { cipher: "aes-128-ccm", tagLen: 8 };
export const HOST_GCM16: HostSuite = { cipher: "aes-256-gcm", tagLen: 16 };

/** A direction of a session on the host: its key, IV, suite and format. */
export type HostKeys = { suite: HostSuite; format: number; key: Buffer; iv: Buffer };

function nonceFor(k: HostKeys, seqHi: number, seq: number): Buffer {
  const n = Buffer.from(k.iv);
  const e = n.length;
  n.writeUInt32BE((n.readUInt32BE(e - 4) ^ seq) >>> 0, e - 4);
  if (seqHi !== 0) n.writeUInt32BE((n.readUInt32BE(e - 8) ^ seqHi) >>> 0, e - 8);
  return n;
}

function writeHeader(format: number, out: Buffer, spi: number, flags: number, length: number, seqHi: number, seq: number): void {
  if (format === FORMAT_COMPACT) {
    out.writeUIntBE(spi, 0, 3);
    out[3] = flags;
    out.writeUInt32BE(((length << 20) | seq) >>> 0, 4);
    return;
  }
  out.writeUInt32BE(spi >>> 0, 0);
  out[4] = flags;
  out.writeUInt32BE(length >>> 0, 5);
  if (format === FORMAT_LARGE) out.writeUInt32BE(seq >>> 0, 9);
  else {
    out.writeUInt32BE(seqHi >>> 0, 9);
    out.writeUInt32BE(seq >>> 0, 13);
  }
}

/** header || ciphertext || tag, in one buffer. The caller owns sequence numbering (never reuses one). */
export function sealFast(k: HostKeys, spi: number, flags: number, seqHi: number, seq: number, payload: Uint8Array): Buffer {
  const hs = HEADER_SIZE[k.format];
  const t = k.suite.tagLen;
  const out = Buffer.allocUnsafe(hs + payload.length + t);
  writeHeader(k.format, out, spi, flags, payload.length, seqHi, seq);
  const aad = out.subarray(0, hs);
  const c = createCipheriv(k.suite.cipher as CipherCCMTypes, k.key, nonceFor(k, seqHi, seq), { authTagLength: t });
  c.setAAD(aad, { plaintextLength: payload.length }); // the length matters to CCM; GCM ignores it
  const n = c.update(payload).copy(out, hs);
  c.final();
  c.getAuthTag().copy(out, hs + n);
  return out;
}

export type FastOpened = { spi: number; flags: number; seqHi: number; seq: number; payload: Buffer };

/** Opens one record (a whole datagram); undefined for anything that is not a valid record under k. */
export function openFast(k: HostKeys, rec: Buffer): FastOpened | undefined {
  const hs = HEADER_SIZE[k.format];
  const t = k.suite.tagLen;
  if (rec.length < hs + t) return undefined;
  let spi: number, length: number, seqHi = 0, seq: number;
  const flags = rec[k.format === FORMAT_COMPACT ? 3 : 4];
  if (k.format === FORMAT_COMPACT) {
    spi = rec.readUIntBE(0, 3);
    const w = rec.readUInt32BE(4);
    length = w >>> 20;
    seq = w & 0xfffff;
  } else {
    spi = rec.readUInt32BE(0);
    length = rec.readUInt32BE(5);
    if (k.format === FORMAT_EXTREME) {
      seqHi = rec.readUInt32BE(9);
      seq = rec.readUInt32BE(13);
    } else seq = rec.readUInt32BE(9);
  }
  if ((flags & 0x0f) !== 0 || spi === SPI_NEGOTIATION || rec.length !== hs + length + t) return undefined;
  const d = createDecipheriv(k.suite.cipher as CipherCCMTypes, k.key, nonceFor(k, seqHi, seq), { authTagLength: t });
  d.setAuthTag(rec.subarray(hs + length));
  d.setAAD(rec.subarray(0, hs), { plaintextLength: length });
  const payload = d.update(rec.subarray(hs, hs + length));
  try {
    d.final();
  } catch {
    return undefined;
  }
  return { spi, flags, seqHi, seq, payload };
}

// ---- compact records on a reused-context CCM (the gateway's per-device path) --------------------------------

/** The fields of a compact header (whatever they hold: the caller judges them). */
export function compactSeq(rec: Uint8Array): number {
  return ((rec[5] & 0x0f) << 16) | (rec[6] << 8) | rec[7];
}

export function compactLength(rec: Uint8Array): number {
  return (rec[4] << 4) | (rec[5] >>> 4);
}

/** A compact header (SPI 24 | FLAGS 8 | Length 12 | Sequence 20) at out[o..]; the caller checked the fields. */
function putCompactHeader(out: Uint8Array, o: number, spi: number, flags: number, length: number, seq: number): void {
  out[o] = (spi >>> 16) & 0xff;
  out[o + 1] = (spi >>> 8) & 0xff;
  out[o + 2] = spi & 0xff;
  out[o + 3] = flags;
  out[o + 4] = (length >>> 4) & 0xff;
  out[o + 5] = ((length & 0x0f) << 4) | ((seq >>> 16) & 0x0f);
  out[o + 6] = (seq >>> 8) & 0xff;
  out[o + 7] = seq & 0xff;
}

/**
 * Opens the compact record `rec` under `aead` and `iv`: its header (8 bytes, the aad) says the sequence
 * number and payload length (the caller judges SPI, flags and sequence number). The plaintext, or
 * undefined when `rec` is not exactly header, payload and tag or the tag does not verify: the firmware's
 * openRecord, on the key's reused contexts.
 */
export function openCompact(aead: ReusedCcm, iv: Uint8Array, rec: Uint8Array): Uint8Array | undefined {
  const length = compactLength(rec);
  if (rec.length !== 8 + length + aead.tagLen) return undefined;
  if (!aead.covers(iv.length, 8, length)) return undefined;
  return aead.openSeq(iv, compactSeq(rec), rec, 8, rec, 8, length);
}

/**
 * Seals a compact record (header || ciphertext || tag) in one buffer, the firmware's sealRecord bytes; the
 * caller owns the fields (spi 1..2^24-1, flags, seq < 2^20, payload < 4096 bytes) and the sequence numbering.
 */
export function sealCompact(aead: ReusedCcm, iv: Uint8Array, spi: number, flags: number, seq: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const out = new Uint8Array(8 + n + aead.tagLen);
  putCompactHeader(out, 0, spi, flags, n, seq);
  if (!aead.covers(iv.length, 8, n)) throw new RangeError("sealCompact: parameters the reused CCM does not cover");
  aead.sealSeq(iv, seq, out, 8, payload, out, 8);
  return out;
}

/**
 * Compact records sealed ahead of their time, for a sender whose next records are predictable (the
 * gateway's ACK of each reading: the next sequence number and the next message id): `count` of them in
 * one batch on the key's reused contexts (ReusedCcm.sealBatch). take() hands out (a copy of) the record for
 * exactly (key, IV, spi, flags, seq, payload) when it is among them. Sequence numbers are sealed once, so a
 * record made ahead is sent at most once, and only as what sealCompact would have made of the same inputs.
 * One object per sender: each seal() replaces the previous batch in the same buffers.
 */
export class SealedAhead {
  private aead: ReusedCcm | undefined;
  private iv: Uint8Array | undefined;
  private spi = 0;
  private flags = 0;
  private seq = 0;
  private count = 0;
  private n = 0;
  private payloads = new Uint8Array(0);
  private recs = new Uint8Array(0);

  /** Seals payloads[e * n, (e + 1) * n) as sequence number seq + e, for e < count (forgetting the last batch). */
  seal(aead: ReusedCcm, iv: Uint8Array, spi: number, flags: number, seq: number, count: number, n: number, payloads: Uint8Array): void {
    if (!aead.covers(iv.length, 8, n)) throw new RangeError("SealedAhead: parameters the reused CCM does not cover");
    const stride = 8 + n + aead.tagLen;
    if (this.recs.length < count * stride) this.recs = new Uint8Array(count * stride);
    if (this.payloads.length < count * n) this.payloads = new Uint8Array(count * n);
    for (let i = 0; i < count * n; i++) this.payloads[i] = payloads[i];
    const recs = this.recs;
    for (let e = 0; e < count; e++) putCompactHeader(recs, e * stride, spi, flags, n, seq + e);
    aead.sealBatch(iv, seq, count, recs, stride, 8, this.payloads, n);
    this.aead = aead;
    this.iv = iv;
    this.spi = spi;
    this.flags = flags;
    this.seq = seq;
    this.count = count;
    this.n = n;
  }

  /** The record sealed ahead for exactly these inputs (a copy of its own), or undefined. */
  take(aead: ReusedCcm, iv: Uint8Array, spi: number, flags: number, seq: number, payload: Uint8Array): Uint8Array | undefined {
    const e = seq - this.seq;
    if (e < 0 || e >= this.count || aead !== this.aead || iv !== this.iv || spi !== this.spi || flags !== this.flags || payload.length !== this.n) return undefined;
    const n = this.n;
    for (let i = 0; i < n; i++) if (this.payloads[e * n + i] !== payload[i]) return undefined;
    const stride = 8 + n + aead.tagLen;
    return this.recs.slice(e * stride, (e + 1) * stride);
  }
}
