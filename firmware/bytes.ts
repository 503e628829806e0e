// Byte-buffer helpers shared by every portable module. Bytes are stored masked to 0..255 by the caller's
// contract: a Uint8Array masks on store, a Lua table does not.
import { alloc, Bytes, fdiv, shr } from "#target";

const HEX = "0123456789abcdef";

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/** Decodes a hex string; returns undefined on odd length or a non-hex character. */
export function fromHex(s: string): Bytes | undefined {
  if (s.length % 2 !== 0) return undefined;
  const n = fdiv(s.length, 2);
  const out = alloc(n);
  for (let i = 0; i < n; i++) {
    const hi = nibble(s.charCodeAt(2 * i));
    const lo = nibble(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return undefined;
    out[i] = hi * 16 + lo;
  }
  return out;
}

export function toHex(b: Bytes): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX.charAt(shr(b[i], 4)) + HEX.charAt(b[i] & 15);
  return s;
}

/** A copy of b[start, end). */
export function slice(b: Bytes, start: number, end: number): Bytes {
  const out = alloc(end - start);
  for (let i = start; i < end; i++) out[i - start] = b[i];
  return out;
}

/** Copies src[0, n) into dst at offset. */
export function copyInto(dst: Bytes, offset: number, src: Bytes, n: number): void {
  for (let i = 0; i < n; i++) dst[offset + i] = src[i];
}

export function concat(a: Bytes, b: Bytes): Bytes {
  const out = alloc(a.length + b.length);
  copyInto(out, 0, a, a.length);
  copyInto(out, a.length, b, b.length);
  return out;
}

/** Equality in time that depends only on the lengths, for tags and MACs. */
export function equalCT(a: Bytes, b: Bytes): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = diff | (a[i] ^ b[i]);
  return diff === 0;
}

/** Overwrites a buffer with zeros, for keys that are no longer needed. */
export function wipe(b: Bytes): void {
  for (let i = 0; i < b.length; i++) b[i] = 0;
}

/** Bytes of an ASCII string (labels, test inputs); characters above 0x7F are not expected. */
export function ascii(s: string): Bytes {
  const out = alloc(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}
