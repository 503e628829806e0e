// Carrying SSE packets (compact records, handshake messages, the error packet) over one BLE GATT
// characteristic. A record can be 8 + 4095 + 8 = 4111 bytes but one ATT write/notification carries at
// most `mtu - 3` bytes, so packets are cut into chunks here and glued back on the other side.
//
// CHUNK FORMAT (this comment is the spec)
//
//   chunk = header (1 byte) | data (0 .. mtu - 4 bytes)          total <= mtu - 3 (the ATT header's 3)
//   header bit 7  FIRST  this chunk starts a packet
//          bit 6  LAST   this chunk ends it (a one-chunk packet has FIRST|LAST)
//          bits 5..0     SEQ: the packet counter (mod 64) plus the chunk's index in its packet (mod 64)
//
// The sender numbers packets 0, 1, 2 ... (mod 64). The FIRST chunk of packet c carries SEQ = c, its
// continuation i carries (c + i) & 63. A plain per-packet counter in every chunk would tell a new packet
// from the lost tail of an old one, but not notice a lost or repeated MIDDLE chunk, and would deliver a
// corrupted packet; with the index folded in, every continuation has exactly one expected SEQ, so the loss
// or duplication of any single chunk is caught. (Two aligned loss bursts can still splice two packets;
// six bits cannot rule that out, and the record's Length field and ICV reject the result above us.)
//
// Every chunk is full (mtu - 4 data bytes) except the last. An empty packet is one FIRST|LAST chunk with
// no data and is delivered as an empty packet (the reassembler is length-agnostic; SSE itself never sends
// one, but making it legal keeps bleFragment total). Overhead: 1 byte per chunk.
//
// ORDER: GATT on one connection is in order and loss-free at the link layer (LL acknowledges and
// retransmits); what happens in practice is a lost tail when a connection drops or a notification queue
// overflows, and a restart. The receiver therefore expects chunks in order and only resynchronises: it
// never reorders. A packet whose chunks arrive out of order is dropped (its SEQs do not match), never
// delivered with wrong bytes.
//
// MTU: the default ATT MTU 23 gives 20-byte chunks (19 data bytes); Espruino's nRF52 builds negotiate 53
// (50-byte chunks, 49 data bytes).
import { alloc, Bytes } from "#target";
import { slice } from "../bytes";

/** The sesame GATT service and its characteristics: fixed random (version 4 style) 128-bit UUIDs sharing a
 * base, so a scanner can match the family by prefix "5e5a". Not the Bluetooth SIG base UUID. */
export const BLE_SERVICE_UUID = "5e5a0001-c3b1-4f7e-9a2d-61e08b47d5f3";
/** Device -> gateway: the device sends chunks as notifications (the gateway subscribes via the CCCD). */
export const BLE_NOTIFY_UUID = "5e5a0002-c3b1-4f7e-9a2d-61e08b47d5f3";
/** Gateway -> device: the gateway writes chunks (write without response; order is still kept). */
export const BLE_WRITE_UUID = "5e5a0003-c3b1-4f7e-9a2d-61e08b47d5f3";

export const BLE_FIRST = 0x80;
export const BLE_LAST = 0x40;
export const BLE_SEQ_MASK = 0x3f;
/** The ATT MTU every BLE link supports, and the one Espruino nRF52 builds negotiate. */
export const BLE_MTU_DEFAULT = 23;
export const BLE_MTU_ESPRUINO = 53;
/** The largest SSE packet: compact header 8 + payload 4095 + tag 8. */
export const BLE_MAX_PACKET = 4111;

/** Data bytes per chunk for an ATT MTU: 3 bytes of ATT header, 1 of ours. MTUs below 23 do not exist in
 * BLE and are taken as 23 so the arithmetic never goes to zero. */
export function bleChunkData(mtu: number): number {
  return (mtu < BLE_MTU_DEFAULT ? BLE_MTU_DEFAULT : mtu) - 4;
}

/** How many chunks a packet of `len` bytes takes: ceil(len / (mtu - 4)), and 1 for an empty packet. */
export function bleChunkCount(len: number, mtu: number): number {
  const d = bleChunkData(mtu);
  let n = 0;
  // Counted by subtraction rather than division: no float on any target.
  for (let left = len; left > 0; left -= d) n++;
  return n === 0 ? 1 : n;
}

/**
 * Cuts `packet` into chunks for an ATT MTU `mtu` (>= 23), numbering it with packet counter `counter`
 * (only its low 6 bits are used; the caller adds 1 per packet). Each chunk is at most mtu - 3 bytes.
 */
export function bleFragment(packet: Bytes, mtu: number, counter: number): Bytes[] {
  const d = bleChunkData(mtu);
  const n = bleChunkCount(packet.length, mtu);
  const out: Bytes[] = [];
  let seq = counter & BLE_SEQ_MASK;
  let off = 0;
  for (let i = 0; i < n; i++) {
    const take = packet.length - off < d ? packet.length - off : d;
    const c = alloc(1 + take);
    let h = seq;
    if (i === 0) h = h | BLE_FIRST;
    if (i === n - 1) h = h | BLE_LAST;
    c[0] = h;
    for (let j = 0; j < take; j++) c[1 + j] = packet[off + j];
    out.push(c);
    off += take;
    seq = (seq + 1) & BLE_SEQ_MASK;
  }
  return out;
}

/** Receiver state. `counter` is the SEQ the next continuation must carry; `dropped` counts resync events
 * (a partial packet abandoned or a stray chunk discarded), for diagnostics, not packets. */
export type BleReassembler = {
  /** The packet being put together: only while one of several chunks is in progress. */
  buf: Bytes | undefined;
  len: number;
  counter: number;
  active: boolean;
  dropped: number;
  max: number;
};

/** A reassembler for packets up to `maxPacket` bytes (BLE_MAX_PACKET for SSE). A packet in one chunk (most
 * of them) needs no buffer; one of several gets a buffer of `maxPacket` bytes for as long as it takes, so a
 * board does not hold it between packets. */
export function bleReassemblerNew(maxPacket: number): BleReassembler {
  const max = maxPacket > 0 ? maxPacket : 0;
  return { buf: undefined, len: 0, counter: 0, active: false, dropped: 0, max: max };
}

function abandon(r: BleReassembler): undefined {
  r.dropped++;
  r.active = false;
  r.len = 0;
  r.buf = undefined;
  return undefined;
}

/**
 * Feeds one received chunk. Returns the whole packet when its LAST chunk arrives, otherwise undefined.
 * Drops (r.dropped++) and waits for the next FIRST on: an empty chunk, a continuation with no packet in
 * progress or with an unexpected SEQ (lost, repeated or reordered chunk), a packet growing past r.max.
 * A FIRST while a packet is in progress drops the old one and starts the new one. Never throws.
 */
export function bleAccept(r: BleReassembler, chunk: Bytes): Bytes | undefined {
  if (chunk.length === 0) return abandon(r);
  const h = chunk[0] & 0xff;
  const seq = h & BLE_SEQ_MASK;
  if ((h & BLE_FIRST) !== 0) {
    if (r.active) r.dropped++; // the old packet lost its tail
    r.active = true;
    r.len = 0;
    r.buf = undefined;
  } else if (!r.active || seq !== r.counter) {
    return abandon(r);
  }
  const n = chunk.length - 1;
  if (r.len + n > r.max) return abandon(r);
  r.counter = (seq + 1) & BLE_SEQ_MASK;
  if ((h & BLE_FIRST) !== 0 && (h & BLE_LAST) !== 0) {
    r.active = false;
    return slice(chunk, 1, chunk.length);
  }
  if (r.buf === undefined) r.buf = alloc(r.max);
  const buf = r.buf;
  for (let i = 0; i < n; i++) buf[r.len + i] = chunk[1 + i] & 0xff;
  r.len += n;
  if ((h & BLE_LAST) === 0) return undefined;
  r.active = false;
  r.buf = undefined;
  const len = r.len;
  r.len = 0;
  return slice(buf, 0, len);
}
