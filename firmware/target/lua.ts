// Target intrinsics for Lua 5.3/5.4 (NodeMCU, wasmoon, fengari): the same exports as `js.ts`.
//
// Lua integers are 64 bits on desktop Lua and 32 bits on NodeMCU builds and fengari. Words are kept
// canonical by masking with M32, which is 0xFFFFFFFF on 64-bit Lua and -1 (all ones) on 32-bit Lua, so the
// same code is right on both. The mask is computed, not written as a literal: TypeScriptToLua writes
// literals in decimal, and 4294967295 is a float on a 32-bit Lua.
// The operators come from TypeScriptToLua's language extensions and compile to plain Lua operators.

declare const band: LuaBitwiseAnd<number, number, number>;
declare const bnot: LuaBitwiseNot<number, number>;
declare const lshift: LuaBitwiseLeftShift<number, number, number>;
declare const rshift: LuaBitwiseRightShift<number, number, number>;
declare const idiv: LuaFloorDivision<number, number, number>;

export type Bytes = number[];
export type Words = number[];

const M32 = lshift(1, 32) - 1;

export function alloc(n: number): Bytes {
  const a: number[] = [];
  for (let i = 0; i < n; i++) a.push(0);
  return a;
}

export function bytesOfBuffer(b: ArrayBuffer): Bytes {
  // No native module returns buffers in Lua (NodeMCU has no heatshrink); the same export as js.ts.
  return b as unknown as Bytes;
}

export function words(n: number): Words {
  return alloc(n);
}

export function u32(hi: number, lo: number): number {
  return band(lshift(hi, 16) | lo, M32);
}

export function add32(a: number, b: number): number {
  return band(a + b, M32);
}

export function sub32(a: number, b: number): number {
  return band(a - b, M32);
}

export function not32(x: number): number {
  return band(bnot(x), M32);
}

export function shl(x: number, n: number): number {
  return band(lshift(x, n), M32);
}

export function shr(x: number, n: number): number {
  return rshift(band(x, M32), n);
}

export function rotr(x: number, n: number): number {
  return band(rshift(band(x, M32), n) | lshift(x, 32 - n), M32);
}

export function rotl(x: number, n: number): number {
  return band(lshift(x, n) | rshift(band(x, M32), 32 - n), M32);
}

export function unsigned(x: number): number {
  // 64-bit Lua: words are already in [0, 2^32). 32-bit Lua has no unsigned integer above 2^31: the word
  // stays as it is (negative), which keeps it an integer for the bit operations that follow.
  return band(x, M32);
}

export function fdiv(a: number, b: number): number {
  return idiv(a, b);
}

export const INT32_ONLY = M32 === -1;

export const TARGET = "lua";

declare const SESAME_BOARD: unknown;

/** The profile a board's bundle was built for (firmware/device.ts): the table the build's prelude defines. */
export function builtProfile(): unknown {
  return SESAME_BOARD;
}
