// Sealing and opening SSE records (SPDUs): the draft's AEAD integration (section 5.5). The header as sent
// is the associated data, so every header bit is authenticated; the payload is encrypted. The nonce is the
// per-direction IV XOR the 64-bit sequence number, right-aligned: while sequence numbers are unique under a
// key, so are nonces (the session layer guarantees the former, across restarts too).
import { alloc, Bytes, shr } from "#target";
import { copyInto, slice } from "../bytes";
import {
  checkHeader,
  HEADER_SIZE,
  Header,
  readHeader,
  REJECT_AUTH,
  REJECT_OVERLONG,
  REJECT_SPI,
  REJECT_TRUNCATED,
  SPI_NEGOTIATION,
  writeHeader,
} from "./header";

/** An AEAD with its key bound in: the suite makes one per key (portable, native or node:crypto). */
export type Aead = {
  tagLen: number;
  nonceLen: number;
  /** ciphertext || tag */
  seal: (this: void, nonce: Bytes, aad: Bytes, plaintext: Bytes) => Bytes;
  /** plaintext, or undefined when the tag does not verify */
  open: (this: void, nonce: Bytes, aad: Bytes, sealed: Bytes) => Bytes | undefined;
  /**
   * Optional, and only ever called on the host (SESAME_HOST_RECORDS: a board's bundle has no such call):
   * seal / open a record where it lies, under the nonce iv XOR seq (seqHi 0), with aad = aadBuf[0, aadLen),
   * without the copies seal and open need. Same bytes and the same checks as seal and open. The host's
   * CCM (host/crypto/ccm.ts) has them, on OpenSSL contexts it keeps per key.
   */
  sealSeq?(iv: Bytes, seq: number, aadBuf: Bytes, aadLen: number, pt: Bytes, out: Bytes, at: number): void;
  /** src[ct, ct + n) then its tag; the plaintext, or undefined when the tag does not verify. */
  openSeq?(iv: Bytes, seq: number, aadBuf: Bytes, aadLen: number, src: Bytes, ct: number, n: number): Bytes | undefined;
  /** n zero bytes of their own, for a record sealSeq will fill (on the host, cheaper than a fresh array). */
  recordBytes?(n: number): Bytes;
};

export type Opened = { header: Header; payload: Bytes };

/** nonce = iv XOR (seqHi || seq) right-aligned, big-endian; iv is nonceLen bytes. */
export function recordNonce(iv: Bytes, seqHi: number, seq: number): Bytes {
  const n = slice(iv, 0, iv.length);
  const end = n.length;
  for (let i = 0; i < 4; i++) {
    n[end - 1 - i] = n[end - 1 - i] ^ (shr(seq, 8 * i) & 0xff);
    n[end - 5 - i] = n[end - 5 - i] ^ (shr(seqHi, 8 * i) & 0xff);
  }
  return n;
}

/**
 * Seals payload into a record: header || ciphertext || tag. Returns a REJECT_* code (a number) when the
 * header does not fit the format (a caller bug, never a reason to send something else).
 */
export function sealRecord(
  format: number,
  aead: Aead,
  iv: Bytes,
  spi: number,
  flags: number,
  seqHi: number,
  seq: number,
  payload: Bytes,
): Bytes | number {
  const h: Header = { spi: spi, flags: flags, length: payload.length, seqHi: seqHi, seq: seq };
  const bad = checkHeader(format, h);
  if (bad !== 0) return bad;
  if (spi === SPI_NEGOTIATION) return REJECT_SPI;
  const hs = HEADER_SIZE[format];
  const n = payload.length + aead.tagLen;
  if (SESAME_HOST_RECORDS && aead.sealSeq !== undefined && seqHi === 0) {
    const rec = aead.recordBytes !== undefined ? aead.recordBytes(hs + n) : alloc(hs + n);
    writeHeader(format, h, rec, 0);
    aead.sealSeq(iv, seq, rec, hs, payload, rec, hs);
    return rec;
  }
  const out = alloc(hs + n);
  writeHeader(format, h, out, 0);
  copyInto(out, hs, aead.seal(recordNonce(iv, seqHi, seq), slice(out, 0, hs), payload), n);
  return out;
}

/**
 * Reads the header of the record at b[off..] and says how many bytes the whole record takes, so a stream
 * link can frame records; returns minus a REJECT_* code when the header is bad or incomplete.
 */
export function recordSize(format: number, tagLen: number, b: Bytes, off: number): number {
  const h = readHeader(format, b, off);
  if (typeof h === "number") return -h;
  return HEADER_SIZE[format] + h.length + tagLen;
}

/**
 * Parses a datagram holding exactly one record; returns the header and the still-sealed body, or a
 * REJECT_* code. The SA is looked up by header.spi before any crypto is spent.
 */
export function parseRecord(format: number, tagLen: number, datagram: Bytes): Header | number {
  const h = readHeader(format, datagram, 0);
  if (typeof h === "number") return h;
  if (h.spi === SPI_NEGOTIATION) return REJECT_SPI;
  const want = HEADER_SIZE[format] + h.length + tagLen;
  if (datagram.length < want) return REJECT_TRUNCATED;
  if (datagram.length > want) return REJECT_OVERLONG;
  return h;
}

/** Opens a datagram holding one record under the SA's AEAD and IV; returns the payload or a REJECT_* code. */
export function openRecord(format: number, aead: Aead, iv: Bytes, datagram: Bytes): Opened | number {
  const h = parseRecord(format, aead.tagLen, datagram);
  if (typeof h === "number") return h;
  return openParsed(format, aead, iv, h, datagram);
}

/** Opens a record already parsed by parseRecord (so the SA lookup and replay check can sit in between). */
export function openParsed(format: number, aead: Aead, iv: Bytes, h: Header, datagram: Bytes): Opened | number {
  const hs = HEADER_SIZE[format];
  const payload = SESAME_HOST_RECORDS && aead.openSeq !== undefined && h.seqHi === 0
    ? aead.openSeq(iv, h.seq, datagram, hs, datagram, hs, h.length)
    : aead.open(recordNonce(iv, h.seqHi, h.seq), slice(datagram, 0, hs), slice(datagram, hs, datagram.length));
  if (payload === undefined) return REJECT_AUTH;
  return { header: h, payload: payload };
}

