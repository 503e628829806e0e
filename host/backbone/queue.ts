// The outgoing side of a backbone peer: every application message waits here, numbered, until the other
// side acknowledges that it has durably taken it. Messages sent on a connection that died are sent again on
// the next one (rewind). The queue is bounded in messages and in bytes, counting both the unsent and the
// sent-but-unacknowledged: when it is full, push() refuses and the caller waits for the owner's 'drain',
// so a stalled controller costs a bounded amount of memory, never more.
//
// Messages are kept encoded, back to back in one arena, as a batch carries them (frame.ts), and their
// positions in rings of numbers: queueing a device reading costs no object, and a batch is one or a few
// views of the arena, sealed as they are. A payload of SPLICE_MIN bytes or more is not copied: the arena
// holds its message's head, and the payload itself is kept by reference and spliced in between.
import { AppMessage, MAX_ID, messageTail, putBytes, uvarintSize, writeMessageHead, writeUvarint } from "./frame";

export type QueueLimits = {
  /** Bytes of queued messages (their encoded size plus PER_MESSAGE_OVERHEAD each). */
  maxBytes: number;
  maxMessages: number;
};

export const DEFAULT_QUEUE: QueueLimits = { maxBytes: 64 << 20, maxMessages: 1 << 18 };

/** What one queued message costs besides its bytes (its slots in the rings), roughly. */
export const PER_MESSAGE_OVERHEAD = 32;

/** Payloads at least this long are kept by reference and spliced into their batch instead of copied. */
export const SPLICE_MIN = 4096;

/** The queue takes new messages again once it has fallen to this fraction of each limit. */
const LOW_WATER = 0.5;

/** Encoded size of a message whose body is `body` bytes. */
function sizeOf(body: number): number {
  return 1 + uvarintSize(body) + body;
}

const RING_MIN = 1024;

export class OutQueue {
  /** The encoded messages; arena[0] is logical byte position `shift` (positions only grow). */
  private arena: Buffer = Buffer.allocUnsafe(64 << 10);
  private shift = 0;
  /** Logical arena position where the next message is written. */
  private writeAt = 0;
  // Per message (number n at ring slot n & mask): where its bytes end in the arena, where it ends counting
  // spliced payloads too (the batch's offsets), and its spliced payload, if any.
  private arenaEnd = new Float64Array(RING_MIN);
  private batchEnd = new Float64Array(RING_MIN);
  private spliced: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(RING_MIN).fill(undefined);
  private mask = RING_MIN - 1;
  /** Arena and batch positions where message `base` starts. */
  private headArena = 0;
  private headBatch = 0;
  /** Batch position of the end of the last message queued. */
  private tailBatch = 0;
  /** The number of the oldest unacknowledged message. */
  base = 0;
  /** The number the next message gets. */
  end = 0;
  /** The number of the next message to send on the current connection. */
  nextToSend = 0;
  /** One past the highest number ever sent (on any connection): what the peer can have taken at most. */
  sentHigh = 0;
  bytes = 0;
  /** A push was refused since the queue last drained: the owner emits 'drain' once it has room. */
  refused = false;

  constructor(readonly limits: QueueLimits = DEFAULT_QUEUE) {}

  /** Queued messages (unsent and unacknowledged). */
  get count(): number { return this.end - this.base; }

  get hasUnsent(): boolean { return this.nextToSend < this.end; }

  /** Encoded bytes of the messages not yet sent on the current connection. */
  get unsentBytes(): number { return this.tailBatch - this.startBatch(this.nextToSend); }

  /** Queues m, whose body size is `body`; false (and m not taken) when either limit would be passed. */
  push(msg: AppMessage, body: number): boolean {
    const tail = messageTail(msg);
    const splice = tail.length >= SPLICE_MIN;
    const head = sizeOf(body) - tail.length;
    if (!this.admit(sizeOf(body), head + (splice ? 0 : tail.length))) return false;
    const a = this.arena;
    let off = writeMessageHead(msg, a, this.writeAt - this.shift, body);
    if (!splice) off = putBytes(a, off, tail);
    this.commit(off + this.shift, splice ? tail : undefined, sizeOf(body));
    return true;
  }

  /**
   * Queues a message of `kind` whose body is `id` (length-prefixed) then `data` bytes the caller writes:
   * the arena position to write them at (in `buffer`, valid until the next call), or -1 when the queue is
   * full (nothing queued). The allocation-free way in for messages whose data the caller assembles.
   */
  reserve(kind: number, id: Uint8Array, data: number): number {
    if (id.length > MAX_ID) throw new RangeError(`ids are at most ${MAX_ID} bytes`);
    const body = uvarintSize(id.length) + id.length + data;
    const size = sizeOf(body);
    if (!this.admit(size, size)) return -1;
    const a = this.arena;
    let off = this.writeAt - this.shift;
    a[off++] = kind;
    off = writeUvarint(a, off, body);
    off = writeUvarint(a, off, id.length);
    off = putBytes(a, off, id);
    this.commit(off + data + this.shift, undefined, size);
    return off;
  }

  /** The arena reserve() positions point into. */
  get buffer(): Buffer { return this.arena; }

  /**
   * Moves unsent messages, oldest first, into a batch while it stays within maxBytes (a first message
   * always goes) and maxCount, appending the batch's bytes to `chunks` as views (valid until the next
   * push or reserve); marks them sent. Returns [messages taken, how many of them had been sent before
   * (on an earlier connection)].
   */
  takeBatch(chunks: Uint8Array[], maxBytes: number, maxCount: number): { taken: number; resent: number } {
    const first = this.nextToSend;
    const startBatch = this.startBatch(first);
    let n = first;
    while (n < this.end && n - first < maxCount) {
      const e = this.batchEnd[n & this.mask];
      if (n > first && e - startBatch > maxBytes) break;
      n++;
    }
    if (n === first) return { taken: 0, resent: 0 };
    // The arena bytes of messages first..n-1, cut where a spliced payload goes in between.
    let from = this.startArena(first);
    for (let k = first; k < n; k++) {
      const s = this.spliced[k & this.mask];
      if (s === undefined) continue;
      const to = this.arenaEnd[k & this.mask];
      chunks.push(this.arena.subarray(from - this.shift, to - this.shift), s);
      from = to;
    }
    const to = this.arenaEnd[(n - 1) & this.mask];
    if (to > from) chunks.push(this.arena.subarray(from - this.shift, to - this.shift));
    const firstResend = this.sentHigh;
    this.nextToSend = n;
    if (n > this.sentHigh) this.sentHigh = n;
    return { taken: n - first, resent: Math.max(0, Math.min(n, firstResend) - first) };
  }

  /**
   * The peer has taken every message numbered below `taken`: they leave the queue, including any waiting
   * to be resent. A count past what was ever sent is clamped (the peer cannot have taken what it never
   * got). Returns how many left.
   */
  ack(taken: number): number {
    const upTo = Math.min(taken, this.sentHigh);
    if (upTo <= this.base) return 0;
    const n = upTo - this.base;
    for (let k = this.base; k < upTo; k++) this.spliced[k & this.mask] = undefined; // let the payloads go now
    const last = (upTo - 1) & this.mask;
    const freed = this.batchEnd[last] - this.headBatch;
    this.headArena = this.arenaEnd[last];
    this.headBatch = this.batchEnd[last];
    this.base = upTo;
    this.bytes -= freed + n * PER_MESSAGE_OVERHEAD;
    if (this.nextToSend < this.base) this.nextToSend = this.base;
    if (this.base === this.end) {
      // Empty: start the arena over (no bytes to move).
      this.shift = this.writeAt = this.headArena;
    }
    return n;
  }

  /** A new connection: everything unacknowledged goes out again, oldest first. */
  rewind(): void {
    this.nextToSend = this.base;
  }

  /** True when a refused caller may try again (the queue is at or below its low-water marks). */
  get roomAgain(): boolean {
    return this.bytes <= this.limits.maxBytes * LOW_WATER && this.count <= this.limits.maxMessages * LOW_WATER;
  }

  private startArena(n: number): number {
    return n === this.base ? this.headArena : this.arenaEnd[(n - 1) & this.mask];
  }

  private startBatch(n: number): number {
    return n === this.base ? this.headBatch : n === this.end ? this.tailBatch : this.batchEnd[(n - 1) & this.mask];
  }

  /** Checks the limits for a message of `size` encoded bytes, `arena` of them in the arena, and makes room. */
  private admit(size: number, arena: number): boolean {
    const cost = size + PER_MESSAGE_OVERHEAD;
    // An empty queue takes any one message, so a message larger than maxBytes is not refused for ever.
    if (this.count > 0 && (this.count >= this.limits.maxMessages || this.bytes + cost > this.limits.maxBytes)) {
      this.refused = true;
      return false;
    }
    if (this.count > this.mask) this.growRings();
    if (this.writeAt + arena - this.shift > this.arena.length) this.makeRoom(arena);
    return true;
  }

  private commit(arenaEnd: number, spliced: Uint8Array | undefined, size: number): void {
    const i = this.end & this.mask;
    this.arenaEnd[i] = arenaEnd;
    this.tailBatch += size;
    this.batchEnd[i] = this.tailBatch;
    this.spliced[i] = spliced;
    this.writeAt = arenaEnd;
    this.end++;
    this.bytes += size + PER_MESSAGE_OVERHEAD;
  }

  /** Room for `n` more arena bytes: the acknowledged bytes moved out of the way, or a larger arena. */
  private makeRoom(n: number): void {
    const live = this.writeAt - this.headArena;
    const dead = this.headArena - this.shift;
    if (live + n <= this.arena.length && dead >= this.arena.length >> 1) {
      this.arena.copyWithin(0, dead, dead + live);
    } else {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.arena.length, live + n));
      this.arena.copy(bigger, 0, dead, dead + live);
      this.arena = bigger;
    }
    this.shift = this.headArena;
  }

  private growRings(): void {
    const size = 2 * (this.mask + 1);
    const arenaEnd = new Float64Array(size);
    const batchEnd = new Float64Array(size);
    const spliced = new Array<Uint8Array | undefined>(size).fill(undefined);
    for (let n = this.base; n < this.end; n++) {
      arenaEnd[n & (size - 1)] = this.arenaEnd[n & this.mask];
      batchEnd[n & (size - 1)] = this.batchEnd[n & this.mask];
      spliced[n & (size - 1)] = this.spliced[n & this.mask];
    }
    this.arenaEnd = arenaEnd;
    this.batchEnd = batchEnd;
    this.spliced = spliced;
    this.mask = size - 1;
  }
}
