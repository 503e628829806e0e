// One backbone connection: a TCP socket carrying one handshake and then one extreme-format session whose
// records are batches of backbone messages (frame.ts). Both ends use it, the gateway as initiator and the
// controller as responder. It knows nothing of queues or acknowledgements (peer.ts does).
//
// On the wire, each direction is: one handshake message framed as  length (2 bytes, big-endian) | message,
// then records only, each delimited by its own header (Length field), as streamLink frames them. In order R
// the controller's first frame is R1 and the gateway's is I2; the controller then sends its CONFIRM record,
// the gateway answers with its own, and each side is ready once the other's CONFIRM opened.
//
//   HANDSHAKE --(peer's CONFIRM opened)--> OPEN --(close / abort / socket gone)--> CLOSED
//
// Timers (one interval per connection): the handshake must finish within handshakeTimeoutMs; an open
// connection sends an empty batch after keepaliveMs without sending, and is declared dead after
// deadAfterMs without receiving. Anything malformed, any record that fails to open, or a timeout aborts
// the connection with SVC's error packet (16 zero bytes) and no cause; the gateway then reconnects with a
// brand-new handshake, so keys, and with them nonces, are never reused across connections.
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { errorPacket, messageType } from "../../firmware/handshake/wire";
import { FLAG_BATCH, FLAG_CONTROL, FLAG_GPCOMP } from "../../firmware/record/header";
import { EndpointConfig, Endpoint, epInput, epNew, epStart, epTakeInbox, epTakeOutput, EP_OPEN } from "../../firmware/session/endpoint";
import { CTRL_CLOSE, CTRL_KEY_UPDATE, keyUpdateRequested, RX_CLOSED, sessionClose, Session, STATE_CLOSED } from "../../firmware/session/session";
import { ByteQueue } from "./bytequeue";
import { decodePieces } from "./batch";
import { FrameError, MAX_BODY } from "./frame";
import { RecordReader, RecordSink } from "./reader";
import { RecordOpener, sealChunks } from "./records";

export const CONN_HANDSHAKE = 0;
export const CONN_OPEN = 1;
export const CONN_CLOSED = 2;

/** Largest record payload accepted or sent: one maximal message plus the small ones riding with it. */
export const MAX_RECORD_PAYLOAD = MAX_BODY + 4096;
const HS_PREFIX = 2;
const MAX_HS_MESSAGE = 64; // every handshake message is at most 51 bytes
const TID = 1; // the session's one transport
const CLOSE_LINGER_MS = 5_000; // how long a closed connection may take to flush before it is destroyed
const ABORT_LINGER_MS = 1_000; // the same for the error packet
// Unsent bytes a socket may hold before senders wait for 'drain'. Node's default high-water mark (16 KiB)
// is smaller than one batch, and stopping at it would leave the link idle between drains.
const SEND_BUFFER = 1 << 20;

export type ConnectionOptions = {
  handshakeTimeoutMs: number;
  keepaliveMs: number;
  deadAfterMs: number;
};

export const DEFAULT_CONNECTION: ConnectionOptions = { handshakeTimeoutMs: 5_000, keepaliveMs: 5_000, deadAfterMs: 15_000 };

export type ConnectionStats = { recordsIn: number; recordsOut: number; bytesIn: number; bytesOut: number };

/**
 * Events: 'answered' (the peer's handshake message was accepted; its identity is proven only at 'ready'),
 * 'ready' (the session is confirmed both ways), 'messages' (Message[] of one batch, in order),
 * 'drain' (the socket took what was written), 'close' (reason: string; once, as soon as either side
 * ended the connection, possibly before the socket has closed).
 */
export class BackboneConnection extends EventEmitter {
  state = CONN_HANDSHAKE;
  readonly ep: Endpoint;
  readonly stats: ConnectionStats = { recordsIn: 0, recordsOut: 0, bytesIn: 0, bytesOut: 0 };
  /** Why the connection ended (set once, when it does). */
  closeReason: string | undefined;
  private readonly hs = new ByteQueue(); // bytes of the peer's handshake frame
  private readonly reader: RecordReader;
  private handshakeIn = false; // the peer's handshake frame was read
  private handshakeOut = false; // ours was written
  private readonly opts: ConnectionOptions;
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = Date.now();
  private lastIn = Date.now();
  private lastOut = Date.now();

  constructor(readonly socket: Socket, cfg: EndpointConfig, opts: Partial<ConnectionOptions> = {}) {
    super();
    this.opts = { ...DEFAULT_CONNECTION, ...opts };
    this.ep = epNew(cfg);
    this.reader = new RecordReader(MAX_RECORD_PAYLOAD, {
      begin: (h) => this.beginRecord(h),
      record: (flags, plain) => this.onRecord(flags, plain),
      fail: (why) => this.abort(why),
      aborted: () => {
        this.finish("aborted by peer"); // nothing to answer: the peer is gone
        this.socket.destroy();
      },
    });
    socket.setNoDelay(true);
    socket.on("data", (b: Buffer) => this.onData(b));
    socket.on("drain", () => this.emit("drain"));
    socket.on("error", () => {}); // ECONNRESET and the like: 'close' follows
    socket.on("close", () => this.finish("socket closed"));
    const tick = Math.max(50, Math.min(1000, this.opts.keepaliveMs / 2, this.opts.handshakeTimeoutMs / 2));
    this.timer = setInterval(() => this.onTick(), tick).unref();
    epStart(this.ep, Date.now());
    this.pumpEndpoint();
  }

  /** The session once the handshake made one. */
  get session(): Session | undefined { return this.ep.session; }

  /** The peer's identity: its kid (on the controller) or its static public key (on the gateway). */
  get peer(): Uint8Array | undefined { return this.ep.session?.peer; }

  /** True while the socket holds less than SEND_BUFFER unsent bytes; when it turns false, 'drain' follows. */
  get writable(): boolean { return this.state === CONN_OPEN && this.socket.writableLength < SEND_BUFFER; }

  /** Runs fn with the socket corked, so the records it sends leave in one writev. */
  corked<T>(fn: () => T): T {
    this.socket.cork();
    try {
      return fn();
    } finally {
      this.socket.uncork();
    }
  }

  /**
   * Seals one batch (the concatenation of `chunks`) into one record and writes it. Returns false when the
   * sender should wait for 'drain' (the record was still written) or the connection is not open.
   */
  sendBatch(chunks: readonly Uint8Array[]): boolean {
    const s = this.ep.session;
    if (this.state !== CONN_OPEN || s === undefined) return false;
    const parts = sealChunks(s, chunks, FLAG_BATCH, Date.now(), MAX_RECORD_PAYLOAD);
    if (parts === undefined) {
      this.abort("batch could not be sealed");
      return false;
    }
    this.socket.cork();
    for (const p of parts) {
      this.socket.write(p);
      this.stats.bytesOut += p.length;
    }
    this.socket.uncork();
    this.stats.recordsOut++;
    this.lastOut = Date.now();
    return this.writable;
  }

  /** Ends the session with an authenticated CLOSE record, then the TCP connection. */
  close(reason = "closed"): void {
    if (this.state === CONN_CLOSED) return;
    const s = this.ep.session;
    if (s !== undefined) {
      sessionClose(s, Date.now());
      this.writeOutput();
    }
    this.finish(reason);
    this.socket.end();
    // A peer that never ends its side must not keep the socket: give the queued records time to leave.
    setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  /** Ends at once with the error packet (SVC: no cause is given to the peer). */
  abort(reason: string): void {
    if (this.state === CONN_CLOSED) return;
    const s = this.ep.session;
    const open = s !== undefined && s.state !== STATE_CLOSED;
    if (s !== undefined) s.state = STATE_CLOSED;
    this.finish(reason);
    this.socket.pause();
    if (open) this.socket.end(errorPacket());
    else this.socket.end();
    setTimeout(() => this.socket.destroy(), ABORT_LINGER_MS).unref();
  }

  /**
   * The connection is over (whoever ended it): stop the timers and the reader and tell the owner, once, at
   * once. The socket may linger a little to flush; the owner may already reconnect.
   */
  private finish(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.state = CONN_CLOSED;
    this.closeReason = reason;
    clearInterval(this.timer);
    this.hs.clear();
    this.reader.stop();
    this.emit("close", reason);
  }

  private onTick(): void {
    const now = Date.now();
    if (this.state === CONN_HANDSHAKE && now - this.startedAt >= this.opts.handshakeTimeoutMs) return this.abort("handshake timeout");
    if (this.state !== CONN_OPEN) return;
    if (now - this.lastIn >= this.opts.deadAfterMs) return this.abort("peer silent");
    if (now - this.lastOut >= this.opts.keepaliveMs) this.sendBatch([]);
  }

  /** Writes what the endpoint has queued: our handshake frame (once), then records. */
  private writeOutput(): void {
    for (const o of epTakeOutput(this.ep)) {
      if (messageType(o.bytes) > 0) {
        if (this.handshakeOut) return this.abort("endpoint restarted its handshake");
        this.handshakeOut = true;
        const frame = Buffer.allocUnsafe(HS_PREFIX + o.bytes.length);
        frame.writeUInt16BE(o.bytes.length, 0);
        frame.set(o.bytes, HS_PREFIX);
        this.socket.write(frame);
      } else {
        this.socket.write(o.bytes);
        this.stats.recordsOut++;
      }
      this.stats.bytesOut += o.bytes.length;
      this.lastOut = Date.now();
    }
  }

  /** After any endpoint step: write its output, notice failures and readiness. */
  private pumpEndpoint(): void {
    this.writeOutput();
    if (this.ep.failures > 0) return this.abort("handshake failed");
    if (this.state === CONN_HANDSHAKE && this.ep.state === EP_OPEN && this.ep.confirmed) {
      this.state = CONN_OPEN;
      this.emit("ready");
    }
  }

  private onData(b: Buffer): void {
    if (this.state === CONN_CLOSED) return;
    this.lastIn = Date.now();
    this.stats.bytesIn += b.length;
    if (this.handshakeIn) return this.reader.push(b);
    this.hs.push(b);
    if (this.hs.length < HS_PREFIX) return;
    const n = this.hs.peek(HS_PREFIX).readUInt16BE(0);
    if (n === 0 || n > MAX_HS_MESSAGE) return this.abort("handshake framing");
    if (this.hs.length < HS_PREFIX + n) return;
    const msg = Uint8Array.from(this.hs.take(HS_PREFIX + n).subarray(HS_PREFIX));
    const rest = this.hs.length > 0 ? this.hs.take(this.hs.length) : undefined;
    this.hs.clear();
    this.handshakeIn = true;
    if (messageType(msg) <= 0) return this.abort("handshake framing");
    epInput(this.ep, msg, TID, Date.now());
    this.pumpEndpoint();
    if (this.state === CONN_CLOSED) return;
    if (this.ep.session === undefined) return this.abort("handshake failed");
    this.emit("answered");
    if (rest !== undefined) this.reader.push(rest);
  }

  /** Where the reader sends a record: the endpoint until the session is confirmed, then the fast path. */
  private beginRecord(header: Buffer): RecordSink | number {
    this.stats.recordsIn++;
    if (this.ep.confirmed) return RecordOpener.begin(this.ep.session!, header);
    // Before confirmation the only record a peer sends is its CONFIRM, which the endpoint takes whole.
    const parts: Buffer[] = [Buffer.from(header)];
    return {
      flags: header[4],
      update: (c) => void parts.push(Buffer.from(c)),
      finish: (tag) => {
        parts.push(tag);
        const r = epInput(this.ep, Uint8Array.from(Buffer.concat(parts)), TID, Date.now());
        if (r < 0) return -r;
        if (r === RX_CLOSED) this.peerClosed();
        else if (epTakeInbox(this.ep).length > 0) this.abort("data before confirmation");
        else this.pumpEndpoint();
        return [];
      },
    };
  }

  private onRecord(flags: number, plaintext: Buffer[]): void {
    if (this.state === CONN_CLOSED) return;
    // The backbone has no GPComp codec (docs/PROTOCOL.md 1.7): neither side ever compresses.
    if ((flags & FLAG_GPCOMP) !== 0) return this.abort("record is compressed (GPComp): the backbone does not compress");
    if ((flags & FLAG_CONTROL) !== 0) {
      const what = plaintext.length > 0 && plaintext[0].length > 0 ? plaintext[0][0] : 0;
      if (what === CTRL_CLOSE) return this.peerClosed();
      if (what === CTRL_KEY_UPDATE) keyUpdateRequested(this.ep.session!, Buffer.concat(plaintext), Date.now());
      return; // CONFIRM again, or a control message we do not know: nothing to do
    }
    if ((flags & FLAG_BATCH) === 0) return this.abort("record is not a batch");
    const ms = decodePieces(plaintext);
    if (ms instanceof FrameError) return this.abort(ms.toString());
    if (ms.length > 0) this.emit("messages", ms);
  }

  private peerClosed(): void {
    const s = this.ep.session;
    if (s !== undefined) s.state = STATE_CLOSED;
    this.finish("closed by peer");
    this.socket.end();
  }
}
