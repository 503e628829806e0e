// Seeded randomness for property tests, so a failing case can be replayed from its seed and index.

import { prng } from "../../host/sim/random";

export { prng };

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Lengths around every SHA-256 padding and block edge first, then uniform in 0..300. */
export const EDGE_LENGTHS = [0, 1, 2, 31, 32, 33, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 121, 127, 128, 129, 191, 192, 193, 255, 256, 257, 300];

export function randomLength(rand: () => number, i: number): number {
  return i < EDGE_LENGTHS.length ? EDGE_LENGTHS[i] : Math.floor(rand() * 301);
}

/** mulberry32 as integers: r(n) is in [0, n). */
export function prngInt(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}
