import { alloc, Bytes, shr } from "#target";

/** Random bytes from a source of random 32-bit integers (E.hwRand, sodium.random.random). */
export function bytesFromWords(next: () => number): (n: number) => Bytes {
  return (n: number) => {
    const out = alloc(n);
    let w = 0;
    for (let i = 0; i < n; i++) {
      if (i % 4 === 0) w = next();
      out[i] = shr(w, 8 * (i % 4)) & 0xff;
    }
    return out;
  };
}
