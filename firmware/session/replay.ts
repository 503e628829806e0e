// Anti-replay for received records (docs/PROTOCOL.md 1.5, "seq").
//
// Datagram links (BLE, LoRa, UDP) reorder and duplicate, so a receiver keeps a sliding window as IPsec does
// (RFC 4303 3.4.3, RFC 6479): `top` is the highest sequence number accepted so far, and bit d of the window
// says whether top - d was accepted, 0 <= d < size. Anything at or below top - size is refused unseen: the
// window has forgotten it. Stream links (TCP) never reorder, so a strictly increasing counter is enough.
//
// Check and accept are split on purpose: a receiver checks before spending crypto on a record and accepts
// only after the tag verified, so forged records can never move the window (RFC 4303 3.4.3 does the same).
//
// Sequence numbers are plain numbers in [0, 2^31 - 1) (compact records stay below 2^20), so `top - seq` and
// `seq - top` fit a 32-bit Lua integer. The window's bits are words; they are only shifted with shl/shr and
// tested against zero, never compared with < or >.
import { shl, shr, words, Words } from "#target";

/**
 * The largest sequence number tracked: 2^31 - 2, so that seq + 1 still fits a 32-bit Lua integer. Senders
 * never get that far (firmware/session/seqstore.ts caps them at the same value); larger numbers are refused.
 */
export const REPLAY_MAX_SEQ = 0x7ffffffe;

export type ReplayWindow = {
  /** Window width in bits: a multiple of 32 from 32 to 1024. */
  size: number;
  /** The highest sequence number accepted so far (meaningless while `any` is false). */
  top: number;
  /** Bit d (word fdiv(d, 32), bit d % 32) is set when top - d was accepted. */
  bits: Words;
  /** Whether any sequence number has been accepted yet. */
  any: boolean;
};

/** A fresh window of `size` bits; throws a string unless size is a multiple of 32 from 32 to 1024. */
export function replayNew(size: number): ReplayWindow {
  if (!(size >= 32 && size <= 1024 && size % 32 === 0)) throw "replay: size must be a multiple of 32 from 32 to 1024";
  return { size: size, top: 0, bits: words(shr(size, 5)), any: false };
}

function validSeq(seq: number): boolean {
  return seq >= 0 && seq <= REPLAY_MAX_SEQ;
}

function bitIsSet(bits: Words, d: number): boolean {
  return (bits[shr(d, 5)] & shl(1, d & 31)) !== 0;
}

/**
 * Moves every bit d to d + k (the window slides up by k): word by word from the top so nothing is read after
 * it was overwritten. Bits pushed past the end fall off; k >= size clears everything.
 */
function slide(w: ReplayWindow, k: number): void {
  const n = shr(w.size, 5);
  const ws = shr(k, 5);
  const bs = k & 31;
  for (let i = n - 1; i >= 0; i--) {
    const src = i - ws;
    let v = 0;
    if (src >= 0) {
      v = shl(w.bits[src], bs);
      // The bits that cross a word boundary; a shift by 32 is undefined, hence the guard.
      if (bs !== 0 && src >= 1) v = v | shr(w.bits[src - 1], 32 - bs);
    }
    w.bits[i] = v;
  }
}

/**
 * True when seq may be accepted: newer than top, or inside the window and not yet seen. Changes nothing, so
 * it is safe to call on records that have not been authenticated.
 */
export function replayCheck(w: ReplayWindow, seq: number): boolean {
  if (!validSeq(seq)) return false;
  if (!w.any || seq > w.top) return true;
  const d = w.top - seq;
  if (d >= w.size) return false;
  return !bitIsSet(w.bits, d);
}

/** Records seq as seen; call it only for a record that passed replayCheck and then authenticated. */
export function replayAccept(w: ReplayWindow, seq: number): void {
  if (!validSeq(seq)) return;
  if (!w.any) {
    w.any = true;
    w.top = seq;
    w.bits[0] = 1;
    return;
  }
  if (seq > w.top) {
    const k = seq - w.top;
    if (k >= w.size) {
      for (let i = 0; i < w.bits.length; i++) w.bits[i] = 0;
    } else {
      slide(w, k);
    }
    w.top = seq;
    w.bits[0] = w.bits[0] | 1;
    return;
  }
  const d = w.top - seq;
  if (d < w.size) w.bits[shr(d, 5)] = w.bits[shr(d, 5)] | shl(1, d & 31);
}

// ---- stream links: strictly increasing ----------------------------------------------------------------

export type StrictCounter = {
  /** The smallest sequence number still acceptable. */
  next: number;
};

export function strictNew(): StrictCounter {
  return { next: 0 };
}

/** True when seq is at least the next expected (gaps are allowed: a sender may skip after a restart). */
export function strictCheck(c: StrictCounter, seq: number): boolean {
  return validSeq(seq) && seq >= c.next;
}

/** Records seq as seen; call it only after the record authenticated. */
export function strictAccept(c: StrictCounter, seq: number): void {
  if (validSeq(seq) && seq >= c.next) c.next = seq + 1;
}
