// SSE SPDU headers (draft-moskowitz-sse-05 section 5), network byte order, fields in the draft's order
// SPI | FLAGS | Length | Sequence:
//
//   compact   SPI 24 | FLAGS 8 | Length 12 | Sequence 20    =  8 bytes
//   large     SPI 32 | FLAGS 8 | Length 32 | Sequence 32    = 13 bytes
//   extreme   SPI 32 | FLAGS 8 | Length 32 | Sequence 64    = 17 bytes
//
// Length counts the encrypted payload only; the ICV length is the suite's. The 64-bit extreme sequence is
// carried as two 32-bit halves (seqHi, seq) so boards never need BigInt. docs/PROTOCOL.md is the spec.
import { Bytes, shl, shr, u32, unsigned } from "#target";

export const FORMAT_COMPACT = 0;
export const FORMAT_LARGE = 1;
export const FORMAT_EXTREME = 2;

/** Header bytes per format, indexed by FORMAT_*. */
export const HEADER_SIZE = [8, 13, 17];

/** FLAGS bit 7: the payload is GPComp-compressed (draft section 5.4). */
export const FLAG_GPCOMP = 0x80;
/** FLAGS bit 6: the low bit of the key index the record was sealed under (rekeying without messages). */
export const FLAG_KEY_PHASE = 0x40;
/** FLAGS bit 5: the payload is a session control message, not application data. */
export const FLAG_CONTROL = 0x20;
/** FLAGS bit 4: the payload is a batch of length-prefixed items (backbone). */
export const FLAG_BATCH = 0x10;
/** Bits 3..0 are reserved: a record with any of them set is rejected, so they can be given meaning later. */
export const FLAGS_KNOWN = FLAG_GPCOMP | FLAG_KEY_PHASE | FLAG_CONTROL | FLAG_BATCH;

/** SPI 0 is reserved for negotiation traffic (and the 16-zero-byte error packet); data SAs never use it. */
export const SPI_NEGOTIATION = 0;

/** The largest payload length each format can express. */
export const MAX_LENGTH_COMPACT = 0xfff;
/** The largest compact SPI and sequence number. */
export const MAX_SPI_COMPACT = 0xffffff;
export const MAX_SEQ_COMPACT = 0xfffff;

// Typed rejections: parsing never throws past this API; callers count these.
export const REJECT_TRUNCATED = 1; // fewer bytes than the header, or than the header's length + ICV
export const REJECT_OVERLONG = 2; // more bytes than the header's length + ICV (datagram links)
export const REJECT_FLAGS = 3; // a reserved FLAGS bit is set
export const REJECT_SPI = 4; // SPI 0 (negotiation) on a data record, or an SPI the format cannot carry
export const REJECT_SEQ = 5; // a sequence number the format cannot carry, or past the SA's limit
export const REJECT_LENGTH = 6; // a payload longer than the format can express
export const REJECT_AUTH = 7; // the ICV did not verify
export const REJECT_FORMAT = 8; // an unknown format number
export const REJECT_GPCOMP = 9; // GPComp set where the receiver has no decompressor, or a payload that would decompress past the bound
export const REJECT_NAMES = ["", "truncated", "overlong", "flags", "spi", "seq", "length", "auth", "format", "gpcomp"];

export type Header = {
  spi: number;
  flags: number;
  /** Encrypted payload bytes, ICV excluded. */
  length: number;
  /** High 32 bits of the sequence number (extreme format only; 0 otherwise). */
  seqHi: number;
  /** Low 32 bits of the sequence number (the whole of it in compact and large formats). */
  seq: number;
};

function put32(out: Bytes, off: number, x: number): void {
  out[off] = shr(x, 24) & 0xff;
  out[off + 1] = shr(x, 16) & 0xff;
  out[off + 2] = shr(x, 8) & 0xff;
  out[off + 3] = x & 0xff;
}

function get32(b: Bytes, off: number): number {
  return unsigned(u32(shl(b[off], 8) | b[off + 1], shl(b[off + 2], 8) | b[off + 3]));
}

/**
 * Checks that a header's fields fit its format; returns 0 or a REJECT_* code. Values are non-negative
 * integers; 32-bit fields are below 2^32.
 */
export function checkHeader(format: number, h: Header): number {
  if (format !== FORMAT_COMPACT && (!SESAME_HOST_RECORDS || (format !== FORMAT_LARGE && format !== FORMAT_EXTREME))) return REJECT_FORMAT;
  if ((h.flags & 0xff) !== h.flags || (h.flags & FLAGS_KNOWN) !== h.flags) return REJECT_FLAGS;
  if (format === FORMAT_COMPACT) {
    if (h.spi < 0 || h.spi > MAX_SPI_COMPACT) return REJECT_SPI;
    if (h.length < 0 || h.length > MAX_LENGTH_COMPACT) return REJECT_LENGTH;
    if (h.seqHi !== 0 || h.seq < 0 || h.seq > MAX_SEQ_COMPACT) return REJECT_SEQ;
  } else if (format === FORMAT_LARGE && h.seqHi !== 0) {
    return REJECT_SEQ;
  }
  return 0;
}

/** Writes the header at out[off..]; the caller has checked it with checkHeader. */
export function writeHeader(format: number, h: Header, out: Bytes, off: number): void {
  // A board's bundle has the compact format only (SESAME_HOST_RECORDS: firmware/features.d.ts).
  if (SESAME_HOST_RECORDS && format !== FORMAT_COMPACT) {
    put32(out, off, h.spi);
    out[off + 4] = h.flags;
    put32(out, off + 5, h.length);
    if (format === FORMAT_LARGE) {
      put32(out, off + 9, h.seq);
    } else {
      put32(out, off + 9, h.seqHi);
      put32(out, off + 13, h.seq);
    }
    return;
  }
  out[off] = shr(h.spi, 16) & 0xff;
  out[off + 1] = shr(h.spi, 8) & 0xff;
  out[off + 2] = h.spi & 0xff;
  out[off + 3] = h.flags;
  // Length 12 | Sequence 20 share four bytes.
  out[off + 4] = shr(h.length, 4) & 0xff;
  out[off + 5] = (shl(h.length & 0x0f, 4) | shr(h.seq, 16)) & 0xff;
  out[off + 6] = shr(h.seq, 8) & 0xff;
  out[off + 7] = h.seq & 0xff;
}

/**
 * Reads a header at b[off..]; returns it, or a REJECT_* code (a number) when the bytes are too few or a
 * reserved flag is set. The SPI and sequence number are not judged here: that is the SA's business.
 */
export function readHeader(format: number, b: Bytes, off: number): Header | number {
  if (format !== FORMAT_COMPACT && (!SESAME_HOST_RECORDS || (format !== FORMAT_LARGE && format !== FORMAT_EXTREME))) return REJECT_FORMAT;
  if (off < 0 || b.length - off < HEADER_SIZE[format]) return REJECT_TRUNCATED;
  let h: Header;
  if (SESAME_HOST_RECORDS && format !== FORMAT_COMPACT) {
    h = {
      spi: get32(b, off),
      flags: b[off + 4],
      length: get32(b, off + 5),
      seqHi: format === FORMAT_EXTREME ? get32(b, off + 9) : 0,
      seq: get32(b, format === FORMAT_EXTREME ? off + 13 : off + 9),
    };
  } else {
    h = {
      spi: shl(b[off], 16) | shl(b[off + 1], 8) | b[off + 2],
      flags: b[off + 3],
      length: shl(b[off + 4], 4) | shr(b[off + 5], 4),
      seqHi: 0,
      seq: shl(b[off + 5] & 0x0f, 16) | shl(b[off + 6], 8) | b[off + 7],
    };
  }
  if ((h.flags & FLAGS_KNOWN) !== h.flags) return REJECT_FLAGS;
  return h;
}
