// The outgoing side of a backbone peer: every application message waits here, numbered, until the other
// side acknowledges that it has durably taken it. Messages sent on a connection that died are sent again on
// the next one (rewind). The queue is bounded in messages and in bytes, counting both the unsent and the
// sent-but-unacknowledged: when it is full, push() refuses and the caller waits for the owner's 'drain',
// so a stalled controller costs a bounded amount of memory, never more.
//
// Messages are kept encoded, back to back in fixed-size blocks, as a batch carries them (frame.ts), and their
// positions in rings of numbers: queueing a device reading costs no object, and a batch is one or a few
// views of the blocks, sealed as they are. A payload of SPLICE_MIN bytes or more is not copied: the block
// holds its message's head, and the payload itself is kept by reference and spliced in between.
//
// Blocks, not one growing buffer: queued bytes never move (a deep queue, tens of megabytes of small
// messages under a bulk load, once cost a copy of everything live on every growth, as much CPU as the
// AES), and the blocks acknowledged messages free are used again (fresh memory costs page faults).
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
/** Bytes of a block; a message longer than a block (only reserve() makes one) gets a block of its own. */
export const BLOCK = 256 << 10;
/** The first block is small: the controller has a queue per gateway, most of them quiet. */
const FIRST_BLOCK = 16 << 10;

export class OutQueue {
  /** Blocks holding queued messages, oldest first; blocks[0] is block number `firstBlock`. */
  private blocks: Buffer[];
  private firstBlock = 0;
  /** Where the next message is written in the newest block. */
  private writeAt = 0;
  /** Blocks of BLOCK bytes no message uses any more, kept for the next ones. */
  private readonly spare: Buffer[] = [];
  // Per message (number n at ring slot n & mask): its block number and where its bytes start and end in
  // that block, where it ends in the batch counting spliced payloads too, and its spliced payload, if any.
  private block = new Float64Array(RING_MIN);
  private blockStart = new Int32Array(RING_MIN);
  private blockEnd = new Int32Array(RING_MIN);
  private batchEnd = new Float64Array(RING_MIN);
  private spliced: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(RING_MIN).fill(undefined);
  private mask = RING_MIN - 1;
  /** Batch position where message `base` starts. */
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

  /** `blockSize` is for tests: small blocks make every path of the block handling run often. */
  constructor(readonly limits: QueueLimits = DEFAULT_QUEUE, private readonly blockSize = BLOCK) {
    this.blocks = [Buffer.allocUnsafe(Math.min(FIRST_BLOCK, blockSize))];
  }

  /** Queued messages (unsent and unacknowledged). */
  get count(): number { return this.end - this.base; }

  get hasUnsent(): boolean { return this.nextToSend < this.end; }

  /** Encoded bytes of the messages not yet sent on the current connection. */
  get unsentBytes(): number { return this.tailBatch - this.startBatch(this.nextToSend); }

  /** Bytes of memory the queue's blocks take, in use and spare (spliced payloads are their senders'). */
  get blockBytes(): number {
    let n = 0;
    for (const b of this.blocks) n += b.length;
    for (const b of this.spare) n += b.length;
    return n;
  }

  /** Queues m, whose body size is `body`; false (and m not taken) when either limit would be passed. */
  push(msg: AppMessage, body: number): boolean {
    const tail = messageTail(msg);
    const splice = tail.length >= SPLICE_MIN;
    const head = sizeOf(body) - tail.length;
    if (!this.admit(sizeOf(body), head + (splice ? 0 : tail.length))) return false;
    const start = this.writeAt;
    const a = this.newest;
    let off = writeMessageHead(msg, a, start, body);
    if (!splice) off = putBytes(a, off, tail);
    this.commit(start, off, splice ? tail : undefined, sizeOf(body));
    return true;
  }

  /**
   * Queues a message of `kind` whose body is `id` (length-prefixed) then `data` bytes the caller writes:
   * the position to write them at (in `buffer`, valid until the next call), or -1 when the queue is
   * full (nothing queued). The allocation-free way in for messages whose data the caller assembles.
   */
  reserve(kind: number, id: Uint8Array, data: number): number {
    if (id.length > MAX_ID) throw new RangeError(`ids are at most ${MAX_ID} bytes`);
    const body = uvarintSize(id.length) + id.length + data;
    const size = sizeOf(body);
    if (!this.admit(size, size)) return -1;
    const start = this.writeAt;
    const a = this.newest;
    let off = start;
    a[off++] = kind;
    off = writeUvarint(a, off, body);
    off = writeUvarint(a, off, id.length);
    off = putBytes(a, off, id);
    this.commit(start, off + data, undefined, size);
    return off;
  }

  /** The block reserve() positions point into. */
  get buffer(): Buffer { return this.newest; }

  /**
   * Moves unsent messages, oldest first, into a batch while it stays within maxBytes (a first message
   * always goes) and maxCount, appending the batch's bytes to `chunks` as views (valid until the
   * messages are acknowledged); marks them sent. Returns [messages taken, how many of them had been sent
   * before (on an earlier connection)].
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
    // Runs of messages that lie back to back in one block go as one view, cut where a spliced payload
    // goes in between or a block ends.
    let runBlock = -1;
    let runStart = 0;
    let runEnd = 0;
    for (let k = first; k < n; k++) {
      const i = k & this.mask;
      if (this.block[i] !== runBlock || this.blockStart[i] !== runEnd) {
        if (runEnd > runStart) chunks.push(this.blockOf(runBlock).subarray(runStart, runEnd));
        runBlock = this.block[i];
        runStart = this.blockStart[i];
      }
      runEnd = this.blockEnd[i];
      const s = this.spliced[i];
      if (s === undefined) continue;
      chunks.push(this.blockOf(runBlock).subarray(runStart, runEnd), s);
      runStart = runEnd;
    }
    if (runEnd > runStart) chunks.push(this.blockOf(runBlock).subarray(runStart, runEnd));
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
    this.headBatch = this.batchEnd[last];
    this.base = upTo;
    this.bytes -= freed + n * PER_MESSAGE_OVERHEAD;
    if (this.nextToSend < this.base) this.nextToSend = this.base;
    // Blocks before the oldest message's are free; an empty queue starts its newest block over.
    const oldest = this.base < this.end ? this.block[this.base & this.mask] : this.firstBlock + this.blocks.length - 1;
    for (; this.firstBlock < oldest; this.firstBlock++) this.release(this.blocks.shift()!);
    if (this.base === this.end) this.writeAt = 0;
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

  private get newest(): Buffer { return this.blocks[this.blocks.length - 1]; }

  private blockOf(n: number): Buffer { return this.blocks[n - this.firstBlock]; }

  private startBatch(n: number): number {
    return n === this.base ? this.headBatch : n === this.end ? this.tailBatch : this.batchEnd[(n - 1) & this.mask];
  }

  /** Checks the limits for a message of `size` encoded bytes, `stored` of them in a block, and makes room. */
  private admit(size: number, stored: number): boolean {
    const cost = size + PER_MESSAGE_OVERHEAD;
    // An empty queue takes any one message, so a message larger than maxBytes is not refused for ever.
    if (this.count > 0 && (this.count >= this.limits.maxMessages || this.bytes + cost > this.limits.maxBytes)) {
      this.refused = true;
      return false;
    }
    if (this.count > this.mask) this.growRings();
    if (this.writeAt + stored > this.newest.length) this.nextBlock(stored);
    return true;
  }

  private commit(start: number, end: number, spliced: Uint8Array | undefined, size: number): void {
    const i = this.end & this.mask;
    this.block[i] = this.firstBlock + this.blocks.length - 1;
    this.blockStart[i] = start;
    this.blockEnd[i] = end;
    this.tailBatch += size;
    this.batchEnd[i] = this.tailBatch;
    this.spliced[i] = spliced;
    this.writeAt = end;
    this.end++;
    this.bytes += size + PER_MESSAGE_OVERHEAD;
  }

  /** Starts a new block with room for `n` bytes: a spare one, or a new one. */
  private nextBlock(n: number): void {
    const newest = this.newest;
    let b: Buffer;
    if (n > this.blockSize) b = Buffer.allocUnsafeSlow(n);
    else b = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
    if (this.base === this.end) {
      // Nothing queued lives in the newest block: replace it rather than keep it.
      this.blocks[this.blocks.length - 1] = b;
      this.release(newest);
    } else this.blocks.push(b);
    this.writeAt = 0;
  }

  /**
   * Keeps a block no message uses for the next ones, as long as the queue holds no more than its byte
   * limit's worth of blocks; the small first block and the oversize ones go.
   */
  private release(b: Buffer): void {
    const size = this.blockSize;
    if (b.length !== size) return;
    if ((this.blocks.length + this.spare.length) * size <= this.limits.maxBytes + 2 * size) this.spare.push(b);
  }

  private growRings(): void {
    const size = 2 * (this.mask + 1);
    const block = new Float64Array(size);
    const blockStart = new Int32Array(size);
    const blockEnd = new Int32Array(size);
    const batchEnd = new Float64Array(size);
    const spliced = new Array<Uint8Array | undefined>(size).fill(undefined);
    for (let n = this.base; n < this.end; n++) {
      const from = n & this.mask, to = n & (size - 1);
      block[to] = this.block[from];
      blockStart[to] = this.blockStart[from];
      blockEnd[to] = this.blockEnd[from];
      batchEnd[to] = this.batchEnd[from];
      spliced[to] = this.spliced[from];
    }
    this.block = block;
    this.blockStart = blockStart;
    this.blockEnd = blockEnd;
    this.batchEnd = batchEnd;
    this.spliced = spliced;
    this.mask = size - 1;
  }
}
