// Target intrinsics for JavaScript (Node, Espruino).
//
// The portable core is compiled twice: to JavaScript (esbuild) and to Lua (TypeScriptToLua). The few
// operations whose meaning differs between the two languages live here and in `lua.ts`, which has the same
// exports; `#target` resolves to one or the other (package.json "imports" for JS, tsconfig "paths" for Lua).
//
// A "word" is a 32-bit value. Its canonical form is target-specific (int32 here, [0, 2^32) on 64-bit Lua,
// the native integer on 32-bit Lua), so portable code may apply `^ & |` to words directly, but must use
// these functions for `+ - ~ << >>` on words and must never compare words with `<` or `>`.
// See docs/PORTABLE.md for the full rules.

// Node runs the firmware from source with every feature (firmware/features.d.ts); bundles define these
// names as constants, which removes this block.
if (typeof SESAME_DH === "undefined") {
  const g = globalThis as unknown as { [name: string]: boolean };
  g.SESAME_DH = true;
  g.SESAME_PSK = true;
  g.SESAME_RESPONDER = true;
  g.SESAME_PORTABLE_SHA256 = true;
  g.SESAME_PORTABLE_AES = true;
  g.SESAME_BLE = true;
  g.SESAME_LORA = true;
  g.SESAME_HOST_RECORDS = true;
}

/** Bytes: a Uint8Array in JavaScript, a 1-based table in Lua (typed `number[]` there). */
export type Bytes = Uint8Array;
/** Words: an Int32Array in JavaScript, a table in Lua. */
export type Words = Int32Array;

/** A zero-filled byte buffer. */
export function alloc(n: number): Bytes {
  return new Uint8Array(n);
}

/** The bytes of an ArrayBuffer a native module returned (Espruino's heatshrink), without a copy. */
export function bytesOfBuffer(b: ArrayBuffer): Bytes {
  return new Uint8Array(b);
}

/** A zero-filled word buffer. */
export function words(n: number): Words {
  return new Int32Array(n);
}

/** The word whose high 16 bits are `hi` and low 16 bits are `lo` (each 0..0xFFFF). */
export function u32(hi: number, lo: number): number {
  return (hi << 16) | lo;
}

/** (a + b) mod 2^32. */
export function add32(a: number, b: number): number {
  return (a + b) | 0;
}

/** (a - b) mod 2^32. */
export function sub32(a: number, b: number): number {
  return (a - b) | 0;
}

/** Bitwise complement of a word. */
export function not32(x: number): number {
  return ~x;
}

/** Logical shift left of a word, 0 <= n < 32. */
export function shl(x: number, n: number): number {
  return x << n;
}

/** Logical shift right of a word (or any non-negative value below 2^32), 0 <= n < 32. */
export function shr(x: number, n: number): number {
  return x >>> n;
}

/** Rotate a word right by n, 0 < n < 32. */
export function rotr(x: number, n: number): number {
  return (x >>> n) | (x << (32 - n));
}

/** Rotate a word left by n, 0 < n < 32. */
export function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/**
 * The word as an unsigned number in [0, 2^32), for comparisons and reports. (On 32-bit Lua, where no such
 * integer exists, a word above 2^31 stays negative.)
 */
export function unsigned(x: number): number {
  return x >>> 0;
}

/** Floor division of integers (both languages agree on its meaning for negative a). */
export function fdiv(a: number, b: number): number {
  return Math.floor(a / b);
}

/** True where the target's integers are 32 bits wide (32-bit Lua); JavaScript's never are. */
export const INT32_ONLY = false;

/** The name of the target, for reports. */
export const TARGET = "js";

declare const SESAME_BOARD_JSON: string;

/**
 * The profile a board's bundle was built for (firmware/device.ts). The build gives Espruino bundles the
 * JSON text, parsed at each call: a constant object would sit in RAM for good, the text stays in flash.
 */
export function builtProfile(): unknown {
  return JSON.parse(SESAME_BOARD_JSON);
}
