// The outgoing side of a backbone peer: every application message waits here, numbered, until the other
// side acknowledges that it has durably taken it. Messages sent on a connection that died are sent again on
// the next one (rewind). The queue is bounded in messages and in bytes, counting both the unsent and the
// sent-but-unacknowledged: when it is full, push() refuses and the caller waits for the owner's 'drain',
// so a stalled controller costs a bounded amount of memory, never more.
import { AppMessage, uvarintSize } from "./frame";

export type QueueLimits = {
  /** Bytes of queued messages (their encoded size plus PER_MESSAGE_OVERHEAD each). */
  maxBytes: number;
  maxMessages: number;
};

export const DEFAULT_QUEUE: QueueLimits = { maxBytes: 64 << 20, maxMessages: 1 << 18 };

/** What one queued message costs besides its bytes (the object, its views, the array slot), roughly. */
export const PER_MESSAGE_OVERHEAD = 96;

/** The queue takes new messages again once it has fallen to this fraction of each limit. */
const LOW_WATER = 0.5;

/** Encoded size of a message whose body is `body` bytes. */
function sizeOf(body: number): number {
  return 1 + uvarintSize(body) + body;
}

export class OutQueue {
  // Messages and their body sizes (what their length prefix says) in two arrays, not one object each:
  // a queue of a million 20-byte messages is mostly this bookkeeping.
  private msgs: (AppMessage | undefined)[] = [];
  private bodies: number[] = [];
  private head = 0; // msgs[head] has number `base`
  /** The number of the oldest unacknowledged message. */
  base = 0;
  /** The number of the next message to send on the current connection. */
  nextToSend = 0;
  /** One past the highest number ever sent (on any connection): what the peer can have taken at most. */
  sentHigh = 0;
  bytes = 0;
  unsentBytes = 0;
  /** A push was refused since the queue last drained: the owner emits 'drain' once it has room. */
  refused = false;

  constructor(readonly limits: QueueLimits = DEFAULT_QUEUE) {}

  /** Queued messages (unsent and unacknowledged). */
  get count(): number { return this.msgs.length - this.head; }

  /** The number the next pushed message gets. */
  get end(): number { return this.base + this.count; }

  get hasUnsent(): boolean { return this.nextToSend < this.end; }

  /** Queues m, whose body size is `body`; false (and m not taken) when either limit would be passed. */
  push(msg: AppMessage, body: number): boolean {
    const size = sizeOf(body);
    const cost = size + PER_MESSAGE_OVERHEAD;
    // An empty queue takes any one message, so a message larger than maxBytes is not refused for ever.
    if (this.count > 0 && (this.count >= this.limits.maxMessages || this.bytes + cost > this.limits.maxBytes)) {
      this.refused = true;
      return false;
    }
    this.msgs.push(msg);
    this.bodies.push(body);
    this.bytes += cost;
    this.unsentBytes += size;
    return true;
  }

  /**
   * Moves unsent messages, oldest first, into a batch (`ms`, and their body sizes into `bodies`) while
   * the batch stays within maxBytes (a first message always goes) and maxCount; marks them sent. Returns
   * how many of them had been sent before (on an earlier connection).
   */
  takeBatch(ms: unknown[], bodies: number[], maxBytes: number, maxCount: number): number {
    let size = 0;
    let i = this.head + (this.nextToSend - this.base);
    const end = this.msgs.length;
    const firstResend = this.sentHigh;
    const start = this.nextToSend;
    while (i < end && ms.length < maxCount) {
      const n = sizeOf(this.bodies[i]);
      if (size > 0 && size + n > maxBytes) break;
      ms.push(this.msgs[i]);
      bodies.push(this.bodies[i]);
      size += n;
      i++;
    }
    this.nextToSend = this.base + (i - this.head);
    if (this.nextToSend > this.sentHigh) this.sentHigh = this.nextToSend;
    this.unsentBytes -= size;
    return Math.max(0, Math.min(this.nextToSend, firstResend) - start);
  }

  /**
   * The peer has taken every message numbered below `taken`: they leave the queue, including any waiting
   * to be resent. A count past what was ever sent is clamped (the peer cannot have taken what it never
   * got). Returns how many left.
   */
  ack(taken: number): number {
    const upTo = Math.min(taken, this.sentHigh);
    const n = Math.max(0, upTo - this.base);
    for (let k = 0; k < n; k++) {
      const size = sizeOf(this.bodies[this.head]);
      if (this.base >= this.nextToSend) this.unsentBytes -= size;
      this.msgs[this.head] = undefined; // let the payload go now
      this.bytes -= size + PER_MESSAGE_OVERHEAD;
      this.head++;
      this.base++;
    }
    if (this.nextToSend < this.base) this.nextToSend = this.base;
    if (this.head > 1024 && this.head * 2 > this.msgs.length) {
      this.msgs = this.msgs.slice(this.head);
      this.bodies = this.bodies.slice(this.head);
      this.head = 0;
    }
    return n;
  }

  /** A new connection: everything unacknowledged goes out again, oldest first. */
  rewind(): void {
    for (let i = this.base; i < this.nextToSend; i++) this.unsentBytes += sizeOf(this.bodies[this.head + (i - this.base)]);
    this.nextToSend = this.base;
  }

  /** True when a refused caller may try again (the queue is at or below its low-water marks). */
  get roomAgain(): boolean {
    return this.bytes <= this.limits.maxBytes * LOW_WATER && this.count <= this.limits.maxMessages * LOW_WATER;
  }
}
