// Send sequence numbers that survive power loss without ever being reused under a key (a reused number is
// a reused AEAD nonce). The scheme is OSCORE's (RFC 8613 Appendix B.1.1): before using any number, persist
// the end of a block of them (a "reservation"); after a restart, start at the persisted end, skipping
// whatever of the last block was never used. Flash is written once per block, not once per record.
//
// Invariant: every number handed out is below the value persisted under the counter's name at that moment,
// and a restart resumes at that persisted value. So a crash at any point (even between a write and the first
// use of its block, or right after open) loses at most one block and never repeats a number.
//
// Persisted value: the reservation's end as a decimal string ("0".."2147483647"). Absent or "" means
// fresh (0). Anything else that is not a decimal number is treated as exhausted (the counter returns -1
// and the caller rekeys): a damaged record must never make numbers start again from 0.
//
// Numbers stay below 2^31 - 1 so they, and max + 1, fit a 32-bit Lua integer. Strings are parsed and built
// by hand: TypeScriptToLua maps parseInt to a lualib helper, and Lua's tostring would print a float as "12.0".
import { fdiv } from "#target";

/** Durable name -> string storage: require("Storage") on Espruino, a file on NodeMCU, a Map in tests. */
export type SeqStorage = {
  read: (this: void, name: string) => string | undefined;
  /** Must be durable when it returns. write(name, "") may erase the entry instead; both read as fresh. */
  write: (this: void, name: string, value: string) => void;
};

export type SeqCounter = {
  /** The storage name, one per key: e.g. "sq:<spi>:<keyIndex>". */
  name: string;
  /** Numbers reserved per storage write. */
  block: number;
  /** The next number to hand out. */
  next: number;
  /** The end of the current reservation, as persisted: numbers below it may be handed out. */
  limit: number;
  /** The largest number the format/SA may use (e.g. 0xFFFFF for compact records). */
  max: number;
};

/** The largest `max` a counter accepts: max + 1 must still fit a 32-bit Lua integer. */
export const SEQ_MAX = 0x7ffffffe;

const DIGITS = "0123456789";

/** Decimal digits of a non-negative integer below 2^31. */
export function formatDecimal(n: number): string {
  if (n === 0) return "0";
  let s = "";
  let x = n;
  while (x > 0) {
    s = DIGITS.charAt(x % 10) + s;
    x = fdiv(x, 10);
  }
  return s;
}

/** A decimal string of at most 2^31 - 1; -1 for anything else (sign, space, empty, overflow). */
export function parseDecimal(s: string): number {
  if (s.length === 0 || s.length > 10) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    // v * 10 + d must stay at most 2^31 - 1: checked before it is computed, for 32-bit Lua.
    if (v > fdiv(0x7fffffff - d, 10)) return -1;
    v = v * 10 + d;
  }
  return v;
}

function isCount(x: number, lo: number, hi: number): boolean {
  return x >= lo && x <= hi && fdiv(x, 1) === x;
}

/** Persists a new reservation starting at c.next: block numbers, never past max + 1. */
function reserve(store: SeqStorage, c: SeqCounter): void {
  if (c.next > c.max) return; // exhausted: nothing left to reserve
  // Written so that no intermediate exceeds max + 1 (next + block could pass 2^31 on 32-bit Lua).
  const limit = c.block > c.max + 1 - c.next ? c.max + 1 : c.next + c.block;
  store.write(c.name, formatDecimal(limit));
  c.limit = limit;
}

function checkArgs(block: number, max: number): void {
  if (!isCount(block, 1, SEQ_MAX)) throw "seqstore: block must be an integer from 1 to 2^31 - 2";
  if (!isCount(max, 0, SEQ_MAX)) throw "seqstore: max must be an integer from 0 to 2^31 - 2";
}

/**
 * Opens the counter persisted under `name`: resumes at the persisted reservation's end (0 when there is
 * none) and persists the next reservation before returning. Throws a string on a bad block or max.
 */
export function seqOpen(store: SeqStorage, name: string, block: number, max: number): SeqCounter {
  checkArgs(block, max);
  const c: SeqCounter = { name: name, block: block, next: 0, limit: 0, max: max };
  const saved = store.read(name);
  const start = saved === undefined ? 0 : saved === "" ? 0 : parseDecimal(saved);
  if (start < 0 || start > max + 1) {
    // Unreadable, or written under a larger max: nothing below it is known to be unused.
    c.next = max + 1;
    c.limit = max + 1;
    return c;
  }
  c.next = start;
  c.limit = start;
  reserve(store, c);
  return c;
}

/**
 * The next sequence number, reserving a new block first when the current one is used up; -1 once every
 * number up to max has been used (the caller must move to a new key). It never wraps. A storage write that
 * throws leaves the counter unchanged and propagates, so no unreserved number is ever returned.
 */
export function seqTake(store: SeqStorage, c: SeqCounter): number {
  if (c.next > c.max) return -1;
  if (c.next >= c.limit) reserve(store, c);
  const s = c.next;
  c.next = s + 1;
  return s;
}

/**
 * Restarts `c` at 0 under a new name, for a new key, reserving as seqOpen does. Only for a key that has
 * never sent anything: the counter of a key that already sent must be resumed with seqOpen, which skips
 * past its reservation. (A stale entry under the new name is overwritten: under a new key, 0 is fresh.)
 */
export function seqReset(store: SeqStorage, c: SeqCounter, name: string): void {
  c.name = name;
  c.next = 0;
  c.limit = 0;
  reserve(store, c);
}

/**
 * Marks a counter's entry removed by writing "" (read back as fresh), once its key is erased for good;
 * writes nothing when there is no entry. Never forget the counter of a key that may still be used.
 */
export function seqForget(store: SeqStorage, name: string): void {
  const saved = store.read(name);
  if (saved !== undefined && saved !== "") store.write(name, "");
}
