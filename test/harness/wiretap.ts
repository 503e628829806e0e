// A wiretap's view of device records: which (key, nonce) each one used. Without a rekey, one SPI is one key
// and the sequence number is the nonce's varying part, so "SPI:seq" names the pair.
import { FORMAT_COMPACT, readHeader } from "../../firmware/record/header";

/** "spi:seq" of a compact record, or undefined for anything else (handshake messages, junk). */
export function recordNonce(packet: Uint8Array): string | undefined {
  const h = readHeader(FORMAT_COMPACT, packet, 0);
  return typeof h === "number" ? undefined : `${h.spi}:${h.seq}`;
}
