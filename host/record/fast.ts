// Records sealed and opened with one node:crypto cipher context per record: the same bytes as
// firmware/record/record.ts (tests hold them equal). This is the floor `npm run bench` measures the gateway
// against, and how the benches and tests make records; the gateway itself opens and seals through the
// record layer, whose host hooks run on a key's reused contexts (host/crypto/ccm.ts).
import { createCipheriv, createDecipheriv, type CipherCCMTypes, type CipherGCMTypes } from "node:crypto";
import { FORMAT_COMPACT, FORMAT_EXTREME, FORMAT_LARGE, HEADER_SIZE, SPI_NEGOTIATION } from "../../firmware/record/header";

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
