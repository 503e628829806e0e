// GPComp (draft-moskowitz-sse section 5.4, FLAGS bit 7): a sender may compress a record's payload and set
// the bit; the receiver decompresses after the record opened, before anything looks at the payload. The
// algorithm is heatshrink (LZSS) as Espruino builds it (window 2^8, lookahead 2^6), because that is the
// compressor Espruino boards carry natively; docs/PROTOCOL.md 1.7 is the spec.
//
// The codec itself is the platform's: Espruino's `require("heatshrink")` on a board, the same C code
// compiled to WebAssembly on the host (host/record/gpcomp.ts). NodeMCU has none: a Lua board never sets
// the bit and refuses records that carry it.
import { Bytes, bytesOfBuffer, fdiv, shr } from "#target";
import { REJECT_GPCOMP } from "./header";

/**
 * Heatshrink with Espruino's parameters (window 8 bits, lookahead 6 bits), with the interface of Espruino's
 * `require("heatshrink")` (libs/compression/jswrap_heatshrink.c), which a board passes as it is: no wrapper
 * to hold in RAM. Out of memory, Espruino prints "Not enough memory for result" and returns undefined.
 */
export type Codec = {
  compress: (this: void, data: Bytes) => ArrayBuffer;
  decompress: (this: void, data: Bytes) => ArrayBuffer | undefined;
};

/**
 * The largest payload a receiver accepts after decompression: a compact record's largest payload, so a
 * compressed record never hands the application more than an uncompressed one could.
 */
export const GPCOMP_MAX_PLAIN = 4095;

/**
 * The shortest payload a sender tries to compress. Below it the most heatshrink could save is a few bytes,
 * and each try costs a board an allocation per message (an 8-byte sensor reading never shrinks anyway).
 */
export const GPCOMP_MIN_PLAIN = 16;

/**
 * What a sender seals: the compressed payload when there is a codec, the payload is GPCOMP_MIN_PLAIN to
 * GPCOMP_MAX_PLAIN bytes long and compressing saves at least one byte; else undefined (the payload goes as
 * it is, without the bit).
 */
export function gpcompPack(codec: Codec | undefined, payload: Bytes): Bytes | undefined {
  if (codec === undefined || payload.length < GPCOMP_MIN_PLAIN || payload.length > GPCOMP_MAX_PLAIN) return undefined;
  const packed = bytesOfBuffer(codec.compress(payload));
  return packed.length < payload.length ? packed : undefined;
}

function bitsAt(data: Bytes, pos: number, n: number): number {
  let v = 0;
  for (let i = pos; i < pos + n; i++) v = v * 2 + (shr(data[fdiv(i, 8)], 7 - (i & 7)) & 1);
  return v;
}

/**
 * How many bytes heatshrink (window 8, lookahead 6 bits) decodes from `data`, read off the bit stream
 * without decoding it, so a bound is checked before anything is allocated (Espruino's native decompress
 * sizes its whole output first, and a board out of memory interrupts the code that called it). Tokens, most
 * significant bit first: 1 and 8 bits, one literal byte; 0, 8 bits of index and 6 of count, count + 1
 * bytes; a token the input ends inside decodes to nothing. Counting stops once past `max`.
 */
export function heatshrinkSize(data: Bytes, max: number): number {
  const bits = data.length * 8;
  let pos = 0;
  let size = 0;
  while (size <= max) {
    if (pos < bits && bitsAt(data, pos, 1) === 1) {
      if (pos + 9 > bits) return size;
      size = size + 1;
      pos = pos + 9;
    } else {
      if (pos + 15 > bits) return size;
      size = size + bitsAt(data, pos + 9, 6) + 1;
      pos = pos + 15;
    }
  }
  return size;
}

/**
 * The payload of an opened record that carries the GPComp bit, decompressed, or REJECT_GPCOMP: no codec
 * here, or more than GPCOMP_MAX_PLAIN bytes in it (a compression bomb: refused from its bit stream, before
 * decoding), or a platform that could not decode it.
 */
export function gpcompUnpack(codec: Codec | undefined, payload: Bytes): Bytes | number {
  if (codec === undefined || heatshrinkSize(payload, GPCOMP_MAX_PLAIN) > GPCOMP_MAX_PLAIN) return REJECT_GPCOMP;
  const out = codec.decompress(payload);
  const plain = out === undefined ? undefined : bytesOfBuffer(out);
  return plain === undefined || plain.length > GPCOMP_MAX_PLAIN ? REJECT_GPCOMP : plain;
}
