// Application messages inside session records, and the small reliability layer that makes every reading
// arrive exactly once or be reported lost.
//
// Sessions never retransmit (a lost record is lost, docs/PROTOCOL.md 3), and LoRa and BLE links lose frames.
// So each reading carries a 24-bit message id; the gateway acknowledges it and delivers it to the
// application once, whatever number of copies arrive; the device sends a copy again, in a new record (a new
// sequence number, never a repeated nonce), until the acknowledgement comes or its tries run out, and then
// reports the id lost. Commands travel the other way under the same rules.
//
//   DATA 0x01 | id (3 bytes, big-endian) | body     acknowledged by the receiver
//   ACK  0x02 | id | id | ...                        one or more ids, 3 bytes each
//
// Message ids come from a persisted counter (firmware/session/seqstore.ts), so after a power cycle a board
// never reuses an id the gateway has seen: the receiver's duplicate filter is a replay window over ids.
// An id older than that window is neither delivered nor acknowledged, so its sender reports it lost: a
// message is never delivered twice, and never counted delivered when it was not.
import { alloc, Bytes, shl, shr } from "#target";
import { replayAccept, replayCheck, replayNew, ReplayWindow } from "../session/replay";
import { SeqCounter, seqOpen, SeqStorage, seqTake } from "../session/seqstore";

export const MSG_DATA = 1;
export const MSG_ACK = 2;
/** Ids are 24-bit: a reading a minute for thirty years. */
export const MSG_ID_MAX = 0xffffff;
const ID_SIZE = 3;

function putId(b: Bytes, at: number, id: number): void {
  b[at] = shr(id, 16) & 0xff;
  b[at + 1] = shr(id, 8) & 0xff;
  b[at + 2] = id & 0xff;
}

function getId(b: Bytes, at: number): number {
  return shl(b[at], 16) + shl(b[at + 1], 8) + b[at + 2];
}

export function encodeData(id: number, body: Bytes): Bytes {
  const m = alloc(1 + ID_SIZE + body.length);
  m[0] = MSG_DATA;
  putId(m, 1, id);
  for (let i = 0; i < body.length; i++) m[1 + ID_SIZE + i] = body[i];
  return m;
}

export function encodeAck(ids: number[]): Bytes {
  const m = alloc(1 + ID_SIZE * ids.length);
  m[0] = MSG_ACK;
  for (let i = 0; i < ids.length; i++) putId(m, 1 + ID_SIZE * i, ids[i]);
  return m;
}

/** The kind of a message (MSG_DATA, MSG_ACK), or 0 when it is malformed. */
export function messageKind(m: Bytes): number {
  if (m.length >= 1 + ID_SIZE && m[0] === MSG_DATA) return MSG_DATA;
  if (m.length >= 1 + ID_SIZE && m[0] === MSG_ACK && (m.length - 1) % ID_SIZE === 0) return MSG_ACK;
  return 0;
}

/** The id of a DATA message, or each id of an ACK (index i). */
export function messageId(m: Bytes, i: number): number {
  return getId(m, 1 + ID_SIZE * i);
}

/** How many ids an ACK carries. */
export function ackCount(m: Bytes): number {
  return countIds(m.length - 1);
}

function countIds(n: number): number {
  let c = 0;
  for (let left = n; left >= ID_SIZE; left -= ID_SIZE) c++;
  return c;
}

export function dataBody(m: Bytes): Bytes {
  const b = alloc(m.length - 1 - ID_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = m[1 + ID_SIZE + i];
  return b;
}

// ---- the sending side ----------------------------------------------------------------------------------

export type Outstanding = { id: number; body: Bytes; tries: number; due: number };

export type Sender = {
  ids: SeqCounter;
  pending: Outstanding[];
  /** Messages waiting at most: a new one beyond this is refused (the caller reports it lost at once). */
  limit: number;
  /** Copies sent before a message is given up. */
  tries: number;
  /** Wait for an acknowledgement before the next copy (ms). */
  rtoMs: number;
  acked: number;
  /** Ids given up since the last senderTakeLost. */
  lost: number[];
};

export function senderNew(store: SeqStorage, name: string, limit: number, tries: number, rtoMs: number): Sender {
  return { ids: seqOpen(store, name, 8, MSG_ID_MAX), pending: [], limit: limit, tries: tries, rtoMs: rtoMs, acked: 0, lost: [] };
}

/** Queues a body; returns its id, or -1 when the queue is full or the ids ran out (the body is not sent). */
export function senderQueue(s: Sender, store: SeqStorage, body: Bytes, now: number): number {
  if (s.pending.length >= s.limit) return -1;
  const id = seqTake(store, s.ids);
  if (id < 0) return -1;
  s.pending.push({ id: id, body: body, tries: 0, due: now });
  return id;
}

/**
 * The messages due for (re)sending now, as DATA messages; each counts a try and is due again after the
 * timeout. Those out of tries move to `lost`. `max` bounds how many go out at once (a slow link).
 */
export function senderDue(s: Sender, now: number, max: number): Bytes[] {
  const out: Bytes[] = [];
  const keep: Outstanding[] = [];
  for (let i = 0; i < s.pending.length; i++) {
    const o = s.pending[i];
    if (o.due > now || out.length >= max) {
      keep.push(o);
    } else if (o.tries >= s.tries) {
      s.lost.push(o.id);
    } else {
      o.tries = o.tries + 1;
      o.due = now + s.rtoMs;
      out.push(encodeData(o.id, o.body));
      keep.push(o);
    }
  }
  s.pending = keep;
  return out;
}

/** An ACK arrived: its ids are done. */
export function senderAck(s: Sender, ack: Bytes): void {
  const n = ackCount(ack);
  for (let k = 0; k < n; k++) {
    const id = messageId(ack, k);
    for (let i = 0; i < s.pending.length; i++) {
      if (s.pending[i].id === id) {
        s.pending.splice(i, 1);
        s.acked = s.acked + 1;
        break;
      }
    }
  }
}

/** Ids given up since the last call. */
export function senderTakeLost(s: Sender): number[] {
  const l = s.lost;
  s.lost = [];
  return l;
}

// ---- the receiving side --------------------------------------------------------------------------------

export type Receiver = { seen: ReplayWindow; duplicates: number; tooOld: number };

export function receiverNew(): Receiver {
  return { seen: replayNew(64), duplicates: 0, tooOld: 0 };
}

/**
 * A DATA message arrived. Returns 1 when it is new (deliver it, acknowledge it), 2 when it is a copy of one
 * already delivered (acknowledge it again: the first acknowledgement was lost), 0 when its id is older than
 * the window (neither: the sender will report it lost).
 */
export function receiverAccept(r: Receiver, id: number): number {
  if (replayCheck(r.seen, id)) {
    replayAccept(r.seen, id);
    return 1;
  }
  if (r.seen.any && id <= r.seen.top && r.seen.top - id < r.seen.size) {
    r.duplicates = r.duplicates + 1;
    return 2;
  }
  r.tooOld = r.tooOld + 1;
  return 0;
}
