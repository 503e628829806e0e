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

/** A queued message, its body size (what its length prefix says) and its whole encoded size. */
export type Queued = { msg: AppMessage; body: number; size: number };

export class OutQueue {
  private items: Queued[] = [];
  private head = 0; // items[head] has number `base`
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
  get count(): number { return this.items.length - this.head; }

  /** The number the next pushed message gets. */
  get end(): number { return this.base + this.count; }

  get hasUnsent(): boolean { return this.nextToSend < this.end; }

  /** Queues m, whose body size is `body`; false (and m not taken) when either limit would be passed. */
  push(msg: AppMessage, body: number): boolean {
    const size = 1 + uvarintSize(body) + body;
    const cost = size + PER_MESSAGE_OVERHEAD;
    // An empty queue takes any one message, so a message larger than maxBytes is not refused for ever.
    if (this.count > 0 && (this.count >= this.limits.maxMessages || this.bytes + cost > this.limits.maxBytes)) {
      this.refused = true;
      return false;
    }
    this.items.push({ msg, body, size });
    this.bytes += cost;
    this.unsentBytes += size;
    return true;
  }

  /** The next unsent message (call only while hasUnsent); takeUnsent() marks it sent. */
  peekUnsent(): Queued {
    return this.items[this.head + (this.nextToSend - this.base)];
  }

  takeUnsent(): Queued {
    const q = this.peekUnsent();
    this.nextToSend++;
    if (this.nextToSend > this.sentHigh) this.sentHigh = this.nextToSend;
    this.unsentBytes -= q.size;
    return q;
  }

  /**
   * The peer has taken every message numbered below `taken`: they leave the queue, including any waiting
   * to be resent. A count past what was ever sent is clamped (the peer cannot have taken what it never
   * got). Returns how many left.
   */
  ack(taken: number): number {
    const upTo = Math.min(taken, this.sentHigh);
    let n = 0;
    while (this.base < upTo) {
      const q = this.items[this.head];
      this.items[this.head] = undefined as unknown as Queued; // let the payload go now
      if (this.base >= this.nextToSend) this.unsentBytes -= q.size;
      this.head++;
      this.base++;
      this.bytes -= q.size + PER_MESSAGE_OVERHEAD;
      n++;
    }
    if (this.nextToSend < this.base) this.nextToSend = this.base;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return n;
  }

  /** A new connection: everything unacknowledged goes out again, oldest first. */
  rewind(): void {
    for (let i = this.base; i < this.nextToSend; i++) this.unsentBytes += this.items[this.head + (i - this.base)].size;
    this.nextToSend = this.base;
  }

  /** True when a refused caller may try again (the queue is at or below its low-water marks). */
  get roomAgain(): boolean {
    return this.bytes <= this.limits.maxBytes * LOW_WATER && this.count <= this.limits.maxMessages * LOW_WATER;
  }
}
