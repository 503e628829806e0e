import { alloc, Bytes, shr } from "#target";

/** `n` random bytes from a source of random 32-bit integers (E.hwRand, sodium.random.random). */
export function bytesOfWords(next: () => number, n: number): Bytes {
  const out = alloc(n);
  let w = 0;
  for (let i = 0; i < n; i++) {
    if (i % 4 === 0) w = next();
    out[i] = shr(w, 8 * (i % 4)) & 0xff;
  }
  return out;
}

/** Random bytes from a source of random 32-bit integers, as a provider's `random`. */
export function bytesFromWords(next: () => number): (n: number) => Bytes {
  return (n: number) => bytesOfWords(next, n);
}
