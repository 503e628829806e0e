// The host's API to a session: a Node Duplex stream over a sesame Session ("on the host, a Node Duplex
// stream over a session"), and the packet links that carry its records over TCP and UDP. Handshakes run
// before the stream exists (the caller hands in an established Session); from then on the links carry only
// records and SVC's 16-zero-byte error packet.
//
// Sesame records are datagrams: a record lost on a link is lost (the session never retransmits). Over TCP
// nothing is lost while the connection lives; when a session moves from one transport to the next, records
// in flight on the old one may be. Reliability across such a move is the application's business.
import type * as dgram from "node:dgram";
import { Duplex } from "node:stream";
import { ERROR_PACKET_SIZE, isErrorPacket } from "../../firmware/handshake/wire";
import { FORMAT_COMPACT, HEADER_SIZE, MAX_LENGTH_COMPACT, REJECT_LENGTH, REJECT_SPI } from "../../firmware/record/header";
import { recordSize } from "../../firmware/record/record";
import {
  addTransport, deleteTransport, queryTransports, RX_CLOSED, RX_DATA, Session, sessionAbort, sessionClose, sessionReceive,
  sessionSend, sessionTakeInbox, sessionTakeOutput, STATE_OPEN, Transport,
} from "../../firmware/session/session";

/** A link that carries whole packets (records, or the error packet) to the peer and back. */
export interface PacketLink {
  send(packet: Uint8Array): boolean; // false: buffer full, wait for 'drain' (the packet was still taken)
  onPacket(cb: (p: Uint8Array) => void): void;
  onClose(cb: () => void): void; // once, when the link is gone for good
  close(): void; // flushes what was sent, then closes
  on?(event: "drain", cb: () => void): void;
  pause?(): void; // read-side backpressure; a link that cannot pause keeps delivering
  resume?(): void;
  isOpen?(): boolean; // false once it can no longer send, possibly before its close callbacks ran
  readonly framingErrors?: number; // byte-stream links: how often the framing broke
}

/** Non-compact formats can carry longer records; this caps them (and what a stream link will buffer). */
export const MAX_RECORD_LARGE = 1 << 20;

export type SessionStreamOptions = {
  now?: () => number; // the session's clock (ms), the one it was created with; Date.now by default
  maxRecord?: number; // payload bytes per record: 1024 by default (16384 for large/extreme), at most 4095 in compact
};

export type SessionStats = {
  sent: number; received: number; rejected: number; unsent: number; framingErrors: number;
  rekeysOut: number; rekeysIn: number; authFailures: number; replays: number;
};

type Callback = (err?: Error | null) => void;

/**
 * Bytes written are split into records, sealed and put on the session's first live transport; payloads
 * received on any transport are read out in order of arrival. Events besides the stream's own:
 * 'transport-down' (id) whenever a transport leaves the session.
 */
export class SessionStream extends Duplex {
  readonly session: Session;
  readonly maxRecord: number;
  closedByPeer = false; // the peer ended the session: a CLOSE record or the error packet
  abortedByPeer = false; // ...and it was the error packet (SVC gives no cause)
  private readonly now: () => number;
  private readonly links = new Map<number, PacketLink>();
  private readonly blocked = new Set<number>(); // links whose send() returned false and have not drained yet
  private waiting: Callback | undefined; // the write callback held back until every blocked link drained
  private readPaused = false;
  private eof = false;
  private framingErrorsGone = 0;

  constructor(session: Session, opts: SessionStreamOptions = {}) {
    // A session closes both ways at once (no half-close), so neither side of the stream outlives the other.
    super({ allowHalfOpen: false });
    this.session = session;
    this.now = opts.now ?? Date.now;
    const compact = session.out.policy.suite.format === FORMAT_COMPACT;
    const limit = compact ? MAX_LENGTH_COMPACT : MAX_RECORD_LARGE;
    this.maxRecord = opts.maxRecord ?? (compact ? 1024 : 16384);
    const ok = Number.isInteger(this.maxRecord) && this.maxRecord >= 1 && this.maxRecord <= limit;
    if (!ok) throw new RangeError(`maxRecord must be 1..${limit} for this format, got ${opts.maxRecord}`);
  }

  /** Adds a transport; the first one added that is still up carries what is sent. The stream owns `link`. */
  addTransport(id: number, name: string, link: PacketLink): void {
    if (this.links.has(id)) throw new Error(`transport ${id} already added`);
    this.links.set(id, link);
    addTransport(this.session, id, name);
    // A link removed from the stream stays silent to it: every handler checks it is still the one under id.
    const mine = () => this.links.get(id) === link;
    link.onPacket((p) => { if (mine()) this.receive(id, p); });
    link.onClose(() => { if (mine()) this.dropTransport(id); });
    link.on?.("drain", () => { if (mine()) this.unblock(id); });
    if (this.readPaused) link.pause?.();
  }

  /** Takes a transport out of the session and closes its link. */
  removeTransport(id: number): void {
    const link = this.links.get(id);
    this.dropTransport(id);
    link?.close();
  }

  /** The session's transports (the draft's QUERY_SSE_Transport). */
  transports(): Transport[] { return queryTransports(this.session); }

  get stats(): SessionStats {
    const s = this.session;
    let framing = this.framingErrorsGone;
    for (const l of this.links.values()) framing += l.framingErrors ?? 0;
    return {
      sent: s.sent, received: s.received, rejected: s.rejected, unsent: s.unsent, framingErrors: framing,
      rekeysOut: s.out.epoch.index, rekeysIn: s.inb.rekeys, authFailures: s.inb.authFailures, replays: s.inb.replays,
    };
  }

  private dropTransport(id: number): void {
    const link = this.links.get(id);
    if (link === undefined) return;
    this.framingErrorsGone += link.framingErrors ?? 0;
    this.links.delete(id);
    deleteTransport(this.session, id);
    this.emit("transport-down", id);
    this.unblock(id); // a dead link will never drain
  }

  private unblock(id: number): void {
    this.blocked.delete(id);
    const cb = this.waiting;
    if (this.blocked.size > 0 || cb === undefined) return;
    this.waiting = undefined;
    cb();
  }

  /**
   * Puts the session's queued packets on their links. The session picked a transport when it sealed; if
   * that link died since (noticed before its 'close' event), the record goes to the next live one instead:
   * the record is not bound to a transport.
   */
  private flush(cb?: Callback): void {
    for (const o of sessionTakeOutput(this.session)) {
      let id = o.transport;
      let link = this.links.get(id);
      if (link !== undefined && link.isOpen?.() === false) {
        this.dropTransport(id);
        link = undefined;
      }
      if (link === undefined) {
        const next = queryTransports(this.session).find((t) => t.up && this.links.has(t.id));
        if (next === undefined) { this.session.unsent++; continue; }
        id = next.id;
        link = this.links.get(id)!;
      }
      if (!link.send(o.bytes)) this.blocked.add(id);
    }
    if (cb === undefined) return;
    if (this.blocked.size === 0) cb();
    else this.waiting = cb;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    const why = this.cannotSend();
    if (why !== undefined) return cb(new Error(why));
    const now = this.now();
    for (let off = 0; off < chunk.length; off += this.maxRecord) {
      if (!sessionSend(this.session, chunk.subarray(off, off + this.maxRecord), now)) {
        this.flush();
        return cb(new Error(this.cannotSend() ?? "sesame: the record could not be sealed"));
      }
    }
    this.flush(cb);
  }

  private cannotSend(): string | undefined {
    if (this.session.state !== STATE_OPEN) return this.closedByPeer ? "sesame: the peer closed the session" : "sesame: the session is closed";
    if (!queryTransports(this.session).some((t) => t.up && this.links.has(t.id))) return "sesame: no transport is up";
    return undefined;
  }

  /** end(): an authenticated CLOSE record; the session is then closed both ways, so the readable side ends too. */
  override _final(cb: Callback): void {
    sessionClose(this.session, this.now());
    this.flush();
    this.endReadable();
    cb();
  }

  /** destroy(): an open session is aborted with the error packet (the peer must not wait for more). */
  override _destroy(err: Error | null, cb: Callback): void {
    sessionAbort(this.session);
    this.flush();
    this.waiting = undefined;
    const links = [...this.links.values()];
    this.links.clear();
    this.blocked.clear();
    for (const l of links) l.close();
    cb(err);
  }

  override _read(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    for (const l of this.links.values()) l.resume?.();
  }

  private receive(id: number, packet: Uint8Array): void {
    const wasOpen = this.session.state === STATE_OPEN;
    const r = sessionReceive(this.session, packet, id, this.now());
    if (r === RX_DATA) {
      for (const p of sessionTakeInbox(this.session)) {
        if (this.eof) break;
        if (!this.push(Buffer.from(p.buffer, p.byteOffset, p.length))) this.pauseLinks();
      }
    } else if (r === RX_CLOSED && wasOpen) {
      this.closedByPeer = true;
      this.abortedByPeer = isErrorPacket(packet);
      this.endReadable();
    }
    this.flush(); // a rejected record may have queued a KEY_UPDATE request
  }

  private pauseLinks(): void {
    if (!this.readPaused) for (const l of this.links.values()) l.pause?.();
    this.readPaused = true;
  }

  private endReadable(): void {
    if (!this.eof) this.push(null);
    this.eof = true;
  }
}

// ---- links ----------------------------------------------------------------------------------------------

/** The callback lists every link keeps; close fires once, however the link learnt it is gone. */
function hooks() {
  const list = <T extends unknown[]>() => {
    const cbs: ((...a: T) => void)[] = [];
    return { add: (cb: (...a: T) => void) => void cbs.push(cb), fire: (...a: T) => { for (const cb of cbs) cb(...a); } };
  };
  const h = { packets: list<[Uint8Array]>(), closes: list<[]>(), drains: list<[]>(), closed: false, fireClose: () => {} };
  h.fireClose = () => { if (!h.closed) { h.closed = true; h.closes.fire(); } };
  return h;
}

/**
 * Records framed on a byte stream (TCP): each record's header gives its length. A packet starting with a
 * zero SPI is taken as SVC's 16-byte error packet; handshake messages (also SPI 0) are not framed here,
 * since the handshake ran before the stream. A bad header, or an SPI-0 packet that is not the error packet,
 * drops the buffered bytes and counts a framing error; it never throws.
 */
export function streamLink(socket: Duplex, format: number, tagLen: number, maxPayload?: number): PacketLink & { framingErrors: number } {
  const h = hooks();
  const headerSize = HEADER_SIZE[format];
  const spiSize = format === FORMAT_COMPACT ? 3 : 4;
  // Without a cap one large/extreme header could make us buffer up to 4 GB.
  const maxFrame = headerSize + (maxPayload ?? (format === FORMAT_COMPACT ? MAX_LENGTH_COMPACT : MAX_RECORD_LARGE)) + tagLen;
  let pending: Buffer = Buffer.alloc(0);

  /** Bytes the packet at b[off..] takes: 0 while more are needed to tell, minus a REJECT_* code if malformed. */
  const frameSize = (b: Buffer, off: number): number => {
    const avail = b.length - off;
    if (avail < spiSize) return 0;
    if (b.subarray(off, off + spiSize).every((x) => x === 0)) {
      if (avail < ERROR_PACKET_SIZE) return 0;
      return isErrorPacket(b.subarray(off, off + ERROR_PACKET_SIZE)) ? ERROR_PACKET_SIZE : -REJECT_SPI;
    }
    if (avail < headerSize) return 0;
    const n = recordSize(format, tagLen, b, off);
    return n > maxFrame ? -REJECT_LENGTH : n;
  };

  const link = {
    framingErrors: 0,
    // On a dead socket the packet is lost, like a datagram; the stream sees isOpen() and moves the session on.
    send: (p: Uint8Array): boolean => (link.isOpen() ? socket.write(p) : true),
    onPacket: h.packets.add,
    onClose: h.closes.add,
    close: () => void socket.end(),
    on: (_event: "drain", cb: () => void) => h.drains.add(cb),
    pause: () => void socket.pause(),
    resume: () => void socket.resume(),
    isOpen: () => !h.closed && !socket.destroyed && socket.writable,
  };
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    for (let n = frameSize(pending, off); n !== 0 && pending.length - off >= n; n = frameSize(pending, off)) {
      if (n < 0) {
        link.framingErrors++;
        pending = Buffer.alloc(0);
        return;
      }
      h.packets.fire(pending.subarray(off, off + n));
      off += n;
    }
    pending = pending.subarray(off);
  });
  socket.on("drain", () => h.drains.fire());
  socket.on("error", () => {}); // ECONNRESET, EPIPE: 'close' follows, and that is what the session needs
  socket.on("close", h.fireClose);
  return link;
}

/**
 * One record per UDP datagram, to and from one peer (datagrams from anyone else are ignored). send()
 * reports backpressure while many datagrams wait in the socket's send queue.
 */
export function datagramLink(socket: dgram.Socket, peer: { address: string; port: number }): PacketLink {
  const HIGH = 64;
  const h = hooks();
  let queued = 0;
  let full = false;
  let closing = false;
  const closeSocket = () => {
    try { socket.close(); } catch { h.fireClose(); } // its owner closed it already
  };
  const sent = () => {
    queued--;
    if (full && queued <= HIGH / 2) {
      full = false;
      h.drains.fire();
    }
    if (closing && queued === 0) closeSocket();
  };
  socket.on("message", (msg: Buffer, from: dgram.RemoteInfo) => {
    if (from.address === peer.address && from.port === peer.port) h.packets.fire(msg);
  });
  socket.on("error", () => {}); // e.g. ICMP port unreachable: UDP is lossy anyway
  socket.on("close", h.fireClose);
  return {
    send: (p) => {
      if (h.closed || closing) return true;
      try {
        socket.send(p, peer.port, peer.address, sent);
      } catch {
        h.fireClose();
        return true;
      }
      full = ++queued >= HIGH || full;
      return !full;
    },
    onPacket: h.packets.add,
    onClose: h.closes.add,
    // Closing the socket at once would drop datagrams still queued (the error packet among them).
    close: () => {
      if (closing || h.closed) return;
      closing = true;
      if (queued === 0) closeSocket();
    },
    on: (_event, cb) => h.drains.add(cb),
    isOpen: () => !h.closed && !closing,
  };
}
