// Heatshrink bit streams written by hand from the format (docs/PROTOCOL.md 1.7), for GPComp's bound tests.

/** One literal "A", then back-references (offset 1) of up to 64 copies: `total` bytes out of a few. */
export function heatshrinkRun(total: number): Uint8Array {
  const bits: number[] = [];
  const put = (v: number, n: number) => {
    for (let i = n - 1; i >= 0; i--) bits.push((v >> i) & 1);
  };
  put(1, 1);
  put(0x41, 8);
  for (let left = total - 1; left > 0; left -= Math.min(left, 64)) {
    put(0, 1);
    put(0, 8);
    put(Math.min(left, 64) - 1, 6);
  }
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((b, i) => (out[i >> 3] |= b << (7 - (i & 7))));
  return out;
}
