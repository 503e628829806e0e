// SPI allocation: each receiver picks the SPI its peer will send to (draft-moskowitz-sse 5.4). SPIs are
// drawn at random, 32 bits as a KMP would give; the compact format keeps the low 24 bits, and a truncated
// SPI that is 0 (reserved for negotiation) or equal to a live SPI is rejected and drawn again.
import { Bytes, shl } from "#target";

/** Give up after this many draws: only a nearly full SPI space (or a broken RNG) gets there. */
export const SPI_DRAWS = 32;

/**
 * A fresh SPI; -1 if none could be found. `compact` keeps 24 bits. `live(spi)` says whether an SA uses it.
 * Large and extreme formats use 31 bits here, so the SPI stays a non-negative integer on every target.
 */
export function spiAllocate(random: (n: number) => Bytes, compact: boolean, live: (spi: number) => boolean): number {
  for (let i = 0; i < SPI_DRAWS; i++) {
    const r = random(4);
    const high = compact ? 0 : r[0] & 0x7f;
    const spi = shl(high, 24) | shl(r[1], 16) | shl(r[2], 8) | r[3];
    if (spi !== 0 && !live(spi)) return spi;
  }
  return -1;
}
