// SPI allocation: each receiver picks the SPI its peer will send to (draft-moskowitz-sse 5.4). SPIs are
// drawn at random, 32 bits as a KMP would give, and truncated to the 24 bits the handshake carries (and the
// compact format sends); a truncated SPI that is 0 (reserved for negotiation) or equal to a live SPI is
// rejected and drawn again. Large and extreme SAs hold the same value with the high 8 bits zero.
import { Bytes, shl } from "#target";

/** Give up after this many draws: only a nearly full SPI space (or a broken RNG) gets there. */
export const SPI_DRAWS = 32;

/** A fresh 24-bit SPI; -1 if none could be found. `live(spi)` says whether an SA of this receiver uses it. */
export function spiAllocate(random: (n: number) => Bytes, live: (spi: number) => boolean): number {
  for (let i = 0; i < SPI_DRAWS; i++) {
    const r = random(4);
    const spi = shl(r[1], 16) | shl(r[2], 8) | r[3]; // the KMP's 32 bits, truncated
    if (spi !== 0 && !live(spi)) return spi;
  }
  return -1;
}
