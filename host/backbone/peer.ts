// One side's view of the other across connections: the gateway has one peer (the controller), the controller
// one per gateway. A peer outlives its connections: its outgoing queue (queue.ts) and what it has received
// carry over from one connection to the next, which is what lets a reconnect lose nothing acknowledged.
//
// Delivery guarantee: at least once, and exactly once while neither process restarts.
//   - Every application message is numbered in its sender's run (a run = one peer object's lifetime, named
//     by 8 random bytes). The first message on every connection is HELLO {run, next, peerRun, taken}:
//     `next` numbers the first message that follows, `taken` tells the peer how many of its run we have
//     taken (when peerRun is its run), so it can drop those before resending.
//   - The receiver delivers each number once (a resent message it already delivered is skipped) and
//     acknowledges with ACK {taken}, cumulative: with autoAck on, ackDelayMs after a delivery or as soon
//     as AUTO_ACK_BYTES arrived unacknowledged (whichever comes first), or when the
//     application calls ack() once it has stored the message durably.
//   - The sender keeps every message until it is acknowledged, and resends the unacknowledged ones, in
//     order, on the next connection. A receiver that restarted has a new run and has lost what it had
//     not acknowledged, so it gets those again: nothing acknowledged is lost, something unacknowledged
//     may come twice (with the same run and number, for the application to recognise).
//
// Batching: messages are queued and flushed into one record per batchBytes, at the latest on the next turn
// of the event loop (setImmediate), or at once when batchBytes of them are waiting, or when the turn has
// been queueing for batchWaitMs (a long burst of synchronous work sends what it has so far).
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { BackboneConnection, CONN_OPEN } from "./connection";
import { AppMessage, checkedBodySize, isAppMessage, KIND_ACK, KIND_HELLO, Message, RUN_SIZE, writeMessageHead } from "./frame";
import { DEFAULT_QUEUE, OutQueue, QueueLimits } from "./queue";

export type PeerOptions = {
  queue: QueueLimits;
  /** A batch is closed once it holds this many bytes (a larger single message travels alone). */
  batchBytes: number;
  /** Acknowledge each batch as soon as its messages were emitted; off: the application calls ack(). */
  autoAck: boolean;
  /** With autoAck: how long an ACK may wait for more deliveries to cover (ms). */
  ackDelayMs: number;
  /** A batch is sent once this long (ms) went by since its first message, even in the middle of a turn. */
  batchWaitMs: number;
};

/**
 * 1 MiB batches: under a bulk load each record costs a cipher set up, a writev and, with autoAck, an ACK
 * record back that the sender opens; at 1 MiB those are a quarter of what they were at 256 KiB (sender CPU
 * per MB of 64 KiB messages about 10% lower). Light traffic is not held back: a batch goes on the next turn
 * of the event loop however small it is.
 */
export const DEFAULT_PEER: PeerOptions = { queue: DEFAULT_QUEUE, batchBytes: 1 << 20, autoAck: true, ackDelayMs: 5, batchWaitMs: 0.5 };

/** The peer options in `o` (which may hold other things too), defaults for the rest. */
export function peerOptions(o: Partial<PeerOptions>): PeerOptions {
  return {
    queue: o.queue ?? DEFAULT_PEER.queue,
    batchBytes: o.batchBytes ?? DEFAULT_PEER.batchBytes,
    autoAck: o.autoAck ?? DEFAULT_PEER.autoAck,
    ackDelayMs: o.ackDelayMs ?? DEFAULT_PEER.ackDelayMs,
    batchWaitMs: o.batchWaitMs ?? DEFAULT_PEER.batchWaitMs,
  };
}

/**
 * autoAck's coalescing: an ACK goes at the latest ackDelayMs after a delivery, or as soon as this many bytes
 * arrived unacknowledged. An ACK is a record of its own (sealed by one side, opened by the other), so
 * acknowledging every batch of a bulk stream cost the receiver a record per MB and the sender another
 * wake-up; a few milliseconds' delay, and a bound in bytes far below any sender's queue, make one ACK
 * cover megabytes without holding a sender back.
 */
export const AUTO_ACK_BYTES = 4 << 20;

/** Messages per batch at most, whatever their size (bounds the work one record makes the receiver do). */
const MAX_BATCH_MESSAGES = 16384;

/**
 * batchWaitMs is checked every this many messages queued (reading the clock costs more than queueing a
 * small message's bookkeeping).
 */
const WAIT_CHECK_EVERY = 16;

export type PeerStats = { delivered: number; duplicates: number; sent: number; resent: number; batches: number; connections: number };

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");
const sameRun = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

/**
 * Events: 'message' (m: AppMessage, seq: number), 'up' (conn), 'down' (reason), 'drain', 'acked' (base: every
 * message of ours numbered below it is acknowledged).
 */
export class BackbonePeer extends EventEmitter {
  readonly run: Uint8Array = randomBytes(RUN_SIZE);
  readonly out: OutQueue;
  readonly opts: PeerOptions;
  readonly stats: PeerStats = { delivered: 0, duplicates: 0, sent: 0, resent: 0, batches: 0, connections: 0 };
  private conn: BackboneConnection | undefined;
  /** The peer's run whose messages we are receiving (all zero: none yet), and its next undelivered number. */
  private peerRun: Uint8Array = new Uint8Array(RUN_SIZE);
  private inNext = 0;
  /** What we have acknowledged (at most inNext), and what the peer was last told. */
  private taken = 0;
  private takenSent = 0;
  /** The number the next counted message on the current connection carries (set by the peer's HELLO). */
  private expect = -1;
  private helloDue = false;
  private scheduled = false;
  /** When the batch being queued got its first message (performance.now()), and messages queued since the clock was read. */
  private batchSince = 0;
  private sinceCheck = 0;
  /** autoAck: the delayed ACK's timer, and the connection's bytesIn when we last acknowledged. */
  private ackTimer: NodeJS.Timeout | undefined;
  private ackedAtBytes = 0;
  /** The chunks of the batch being sealed, and the bytes of its HELLO and ACK (at most 2 * 9 + 2 * 8 + 3 * 9). */
  private readonly chunks: Uint8Array[] = [];
  private readonly control = Buffer.alloc(64);

  constructor(opts: Partial<PeerOptions> = {}) {
    super();
    this.opts = peerOptions(opts);
    this.out = new OutQueue(this.opts.queue);
  }

  /** The peer's run (hex) whose message numbers 'message' reports. */
  get peerRunHex(): string { return hex(this.peerRun); }

  get connected(): boolean { return this.conn !== undefined && this.conn.state === CONN_OPEN; }

  get connection(): BackboneConnection | undefined { return this.conn; }

  /**
   * Takes a connection, still handshaking or just ready (call it from the 'ready' handler at the latest);
   * it carries this peer's traffic from then on, and replaces the connection the peer had.
   */
  attach(conn: BackboneConnection): void {
    const ready = () => {
      if (this.conn !== undefined && this.conn !== conn) this.conn.close("replaced by a new connection");
      this.conn = conn;
      this.stats.connections++;
      this.expect = -1;
      this.helloDue = true;
      this.ackedAtBytes = 0;
      this.out.rewind();
      this.flush();
      this.emit("up", conn);
    };
    if (conn.state === CONN_OPEN) ready();
    else conn.once("ready", ready);
    conn.on("messages", (ms: Message[]) => { if (this.conn === conn) this.receive(conn, ms); });
    conn.on("drain", () => { if (this.conn === conn) this.flush(); });
    conn.once("close", (reason: string) => {
      if (this.conn !== conn) return;
      this.conn = undefined;
      this.emit("down", reason);
    });
  }

  /**
   * Queues an application message; false when the queue is full (the message is not taken: wait for
   * 'drain'). Throws a RangeError for a message that cannot be encoded. A message taken is numbered
   * `out.end - 1`, the number 'acked' reports it by.
   */
  send(m: AppMessage): boolean {
    if (!this.out.push(m, checkedBodySize(m))) return false;
    this.flushIfDue();
    this.schedule();
    return true;
  }

  /**
   * Queues a message of `kind` (one whose body is an id, then data: UPLINK, DOWNLINK, KEYS...) whose `data`
   * bytes the caller writes at the position returned, in `out.buffer`, before anything else is queued; -1
   * when the queue is full (as send() returning false). Numbered `out.end - 1`, as send()'s messages.
   */
  reserve(kind: number, id: Uint8Array, data: number): number {
    // A batch due goes now, before this message: the bytes of the one reserved before are written by now.
    this.flushIfDue();
    const at = this.out.reserve(kind, id, data);
    if (at >= 0) this.schedule();
    return at;
  }

  /** Acknowledges every message of the peer's run `run` (default: the current one) numbered below `taken`. */
  ack(taken: number, run?: string): void {
    if (run !== undefined && run !== this.peerRunHex) return;
    const t = Math.min(taken, this.inNext);
    if (t <= this.taken) return;
    this.taken = t;
    this.schedule();
  }

  /** Closes the current connection (the queue stays: a later attach carries on with it). */
  close(reason = "closed"): void {
    this.conn?.close(reason);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.batchSince = performance.now();
    this.sinceCheck = 0;
    setImmediate(this.flushSoon);
  }

  /**
   * Sends the full batches, or else what is queued when this turn has been queueing for batchWaitMs: a
   * gateway taking in a burst of device records (a socket read of hundreds) would otherwise send the first
   * reading only after the last was opened, and each reading's added latency would be the whole burst's.
   */
  private flushIfDue(): void {
    if (this.out.unsentBytes >= this.opts.batchBytes) return this.flush(false);
    if (!this.scheduled || ++this.sinceCheck < WAIT_CHECK_EVERY) return;
    this.sinceCheck = 0;
    const now = performance.now();
    if (now - this.batchSince < this.opts.batchWaitMs) return;
    this.batchSince = now;
    this.flush(true);
  }

  private readonly flushSoon = (): void => {
    this.scheduled = false;
    this.flush(true);
  };

  /**
   * Puts queued messages on the connection, a batch per record, while its socket takes them. Unless
   * `partial`, only full batches go (the rest waits for the next turn of the event loop, or for more).
   */
  private flush(partial = true): void {
    const conn = this.conn;
    if (conn === undefined || conn.state !== CONN_OPEN) return;
    conn.corked(() => {
      while (conn.writable && (partial || this.out.unsentBytes >= this.opts.batchBytes)) {
        const chunks = this.chunks;
        chunks.length = 0;
        let control = 0;
        if (this.helloDue) {
          control = writeMessageHead({ kind: KIND_HELLO, run: this.run, next: this.out.base, peerRun: this.peerRun, taken: this.taken }, this.control, control);
          this.helloDue = false;
          this.takenSent = this.taken;
        }
        if (this.taken !== this.takenSent) {
          control = writeMessageHead({ kind: KIND_ACK, taken: this.taken }, this.control, control);
          this.takenSent = this.taken;
        }
        if (control > 0) chunks.push(this.control.subarray(0, control));
        const { taken, resent } = this.out.takeBatch(chunks, this.opts.batchBytes, MAX_BATCH_MESSAGES);
        this.stats.resent += resent;
        this.stats.sent += taken;
        if (chunks.length === 0) return;
        this.stats.batches++;
        // The chunks are views of the queue's blocks, which stay as they are until acknowledged.
        conn.sendBatch(chunks);
      }
    });
  }

  private receive(conn: BackboneConnection, ms: Message[]): void {
    let delivered = false;
    for (const m of ms) {
      if (m.kind === KIND_HELLO) {
        if (this.expect >= 0) return conn.abort("second HELLO");
        if (sameRun(m.peerRun, this.run)) this.acked(m.taken);
        if (!sameRun(m.run, this.peerRun)) {
          this.peerRun = Uint8Array.from(m.run);
          this.inNext = m.next;
          this.taken = m.next;
          this.takenSent = m.next;
        } else if (m.next > this.inNext) return conn.abort("HELLO skips messages");
        this.expect = m.next;
      } else if (this.expect < 0) {
        return conn.abort("message before HELLO");
      } else if (m.kind === KIND_ACK) {
        this.acked(m.taken);
      } else if (isAppMessage(m)) {
        const seq = this.expect++;
        if (seq < this.inNext) {
          this.stats.duplicates++;
          continue;
        }
        this.inNext = seq + 1;
        this.stats.delivered++;
        delivered = true;
        this.emit("message", m, seq);
        if (this.conn !== conn) return; // a handler closed the connection
      }
    }
    if (delivered && this.opts.autoAck) this.autoAck(conn);
  }

  private autoAck(conn: BackboneConnection): void {
    if (conn.stats.bytesIn - this.ackedAtBytes < AUTO_ACK_BYTES) {
      this.ackTimer ??= setTimeout(this.ackDelayed, this.opts.ackDelayMs).unref();
      return;
    }
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.ackedAtBytes = conn.stats.bytesIn;
    this.ack(this.inNext);
  }

  private readonly ackDelayed = (): void => {
    this.ackTimer = undefined;
    if (this.conn !== undefined) this.ackedAtBytes = this.conn.stats.bytesIn;
    this.ack(this.inNext);
  };

  private acked(taken: number): void {
    if (this.out.ack(taken) === 0) return;
    // Before 'drain': whoever waits on the acknowledgements (the gateway's device ACKs) is told first.
    this.emit("acked", this.out.base);
    if (this.out.refused && this.out.roomAgain) {
      this.out.refused = false;
      this.emit("drain");
    }
  }
}
