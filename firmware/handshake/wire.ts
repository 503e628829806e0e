// Handshake messages on the wire. Every handshake message travels on SPI 0 (the SSE SPI reserved for
// negotiation): three zero bytes where a compact record has its SPI, then a type byte (version in the high
// nibble, message in the low). The layouts, sizes and the transcript rules are in docs/PROTOCOL.md section 2.
import { alloc, Bytes, shl, shr } from "#target";

export const HS_VERSION = 1;

// dh mode, responder speaks first (SVC's order: the side that accepts the link sends first).
export const MSG_DH_R1 = 0x11; // R -> I: SPI_R | E_R
export const MSG_DH_I2 = 0x12; // I -> R: SPI_I | E_I | {kid_I}
// dh mode, initiator speaks first (uplink-first links such as LoRa class A).
export const MSG_DH_I1 = 0x13; // I -> R: SPI_I | E_I | {kid_I}
export const MSG_DH_R2 = 0x14; // R -> I: SPI_R | E_R | {}
// psk mode, the same two orders.
export const MSG_PSK_R1 = 0x15; // R -> I: SPI_R | N_R
export const MSG_PSK_I2 = 0x16; // I -> R: SPI_I | pid | N_I | {}
export const MSG_PSK_I1 = 0x17; // I -> R: SPI_I | pid | N_I | {}
export const MSG_PSK_R2 = 0x18; // R -> I: SPI_R | N_R | {}

export const PREFIX = 4; // SPI 0 (3 bytes) + type
export const SPI_SIZE = 3;
export const KEY_SIZE = 32;
export const KID_SIZE = 4;
export const PID_SIZE = 4;
export const NONCE_SIZE = 8;
export const TAG_SIZE = 8;

export const SIZE_DH_R1 = PREFIX + SPI_SIZE + KEY_SIZE; // 39
export const SIZE_DH_I2 = PREFIX + SPI_SIZE + KEY_SIZE + KID_SIZE + TAG_SIZE; // 51
export const SIZE_DH_I1 = SIZE_DH_I2; // 51
export const SIZE_DH_R2 = PREFIX + SPI_SIZE + KEY_SIZE + TAG_SIZE; // 47
export const SIZE_PSK_R1 = PREFIX + SPI_SIZE + NONCE_SIZE; // 15
export const SIZE_PSK_I2 = PREFIX + SPI_SIZE + PID_SIZE + NONCE_SIZE + TAG_SIZE; // 27
export const SIZE_PSK_I1 = SIZE_PSK_I2; // 27
export const SIZE_PSK_R2 = PREFIX + SPI_SIZE + NONCE_SIZE + TAG_SIZE; // 23

/** SVC's error signal: exactly 16 zero bytes; both sides close the session, no cause given. */
export const ERROR_PACKET_SIZE = 16;

/** The one failure a handshake step reports: which check failed is never told (nor sent). */
export const HS_FAIL = -1;

function sizeOf(type: number): number {
  if (type === MSG_DH_R1) return SIZE_DH_R1;
  if (type === MSG_DH_I2 || type === MSG_DH_I1) return SIZE_DH_I2;
  if (type === MSG_DH_R2) return SIZE_DH_R2;
  if (type === MSG_PSK_R1) return SIZE_PSK_R1;
  if (type === MSG_PSK_I2 || type === MSG_PSK_I1) return SIZE_PSK_I2;
  if (type === MSG_PSK_R2) return SIZE_PSK_R2;
  return -1;
}

/** The message type of a handshake message of the right size, or HS_FAIL for anything else. */
export function messageType(b: Bytes): number {
  if (b.length < PREFIX || b[0] !== 0 || b[1] !== 0 || b[2] !== 0) return HS_FAIL;
  const type = b[3];
  return sizeOf(type) === b.length ? type : HS_FAIL;
}

/** True for SVC's error packet. */
export function isErrorPacket(b: Bytes): boolean {
  if (b.length !== ERROR_PACKET_SIZE) return false;
  let acc = 0;
  for (let i = 0; i < ERROR_PACKET_SIZE; i++) acc = acc | b[i];
  return acc === 0;
}

export function errorPacket(): Bytes {
  return alloc(ERROR_PACKET_SIZE);
}

/** A message of `type` with its prefix written and room for the rest. */
export function newMessage(type: number): Bytes {
  const m = alloc(sizeOf(type));
  m[3] = type;
  return m;
}

export function putSpi(m: Bytes, spi: number): void {
  m[PREFIX] = shr(spi, 16) & 0xff;
  m[PREFIX + 1] = shr(spi, 8) & 0xff;
  m[PREFIX + 2] = spi & 0xff;
}

export function getSpi(m: Bytes): number {
  return shl(m[PREFIX], 16) | shl(m[PREFIX + 1], 8) | m[PREFIX + 2];
}
