// A session: the two SAs a handshake produced, spread over any number of transports (the draft's
// add / delete / query transport, section 4), so it carries on when one of them drops. The session is a
// plain state object driven by three calls (send, receive, takeOutput): the board runtime, the host's
// event loop, the simulator's virtual clock and the tests all drive it the same way.
import { alloc, Bytes } from "#target";
import { fromHex, slice, toHex, wipe } from "../bytes";
import { Established } from "../handshake/dh";
import { errorPacket, isErrorPacket } from "../handshake/wire";
import { gpcompPack, gpcompUnpack } from "../record/gpcomp";
import { FLAG_CONTROL, FLAG_GPCOMP } from "../record/header";
import { DIR_I2R, DIR_R2I, trafficSecret } from "./keys";
import { formatDecimal, parseDecimal } from "./seqstore";
import { inboundNew, inboundOpen, Inbound, Outbound, outboundNew, outboundRekey, outboundSeal, SaPolicy } from "./sa";

/** Control messages ride in records with FLAG_CONTROL; the first payload byte says which. */
export const CTRL_CLOSE = 1;
/**
 * "Move your sending key on to index n": sent when our receiving key reached its forgery limit. Payload: this
 * byte, then n & 0xff, n being our retired receiving key's index + 1 (docs/PROTOCOL.md 3.6).
 */
export const CTRL_KEY_UPDATE = 2;
/** A retired key's KEY_UPDATE request goes again, in answer to a record under that key, at most this often (ms). */
export const KEY_UPDATE_EVERY_MS = 5000;

// sessionReceive's results: what the caller should look at. Negative numbers are REJECT_* codes.
export const RX_DATA = 1;
export const RX_CONTROL = 2;
export const RX_CLOSED = 3;

export const STATE_OPEN = 1;
export const STATE_CLOSED = 2;

export type Transport = { id: number; name: string; up: boolean };
export type Outgoing = { transport: number; bytes: Bytes };

export type Session = {
  /** The handshake's final transcript hash: both sides' name for this session. */
  id: Bytes;
  peer: Bytes;
  initiator: boolean;
  out: Outbound;
  inb: Inbound;
  transports: Transport[];
  inbox: Bytes[];
  outbox: Outgoing[];
  state: number;
  /** True once a record from the peer opened: the handshake's implicit authentication is now explicit. */
  confirmed: boolean;
  sent: number;
  received: number;
  rejected: number;
  /** Records that could not be sent because no transport was up. */
  unsent: number;
  /** No KEY_UPDATE request goes before this time (ms), whatever records come: forged ones must not make a downlink flood. */
  keyUpdateNext: number;
  /** Records sent with GPComp, and the payload bytes compression saved on them. */
  compressed: number;
  saved: number;
};

function tagOf(id: Bytes, initiator: boolean): string {
  return toHex(slice(id, 0, 6)) + (initiator ? "i" : "r");
}

/** A session from a completed handshake. `policy` applies to both directions. */
export function sessionNew(policy: SaPolicy, est: Established, now: number): Session {
  const p = policy.p;
  const mine = est.initiator ? DIR_I2R : DIR_R2I;
  const theirs = est.initiator ? DIR_R2I : DIR_I2R;
  const out = trafficSecret(p, est.masterKey, mine);
  const inb = trafficSecret(p, est.masterKey, theirs);
  wipe(est.masterKey); // only the per-direction secrets, which ratchet forward, outlive the handshake
  return {
    id: est.sessionHash, peer: est.peer, initiator: est.initiator,
    out: outboundNew(policy, out, 0, est.peerSpi, tagOf(est.sessionHash, est.initiator), now),
    inb: inboundNew(policy, inb, 0, est.localSpi),
    transports: [], inbox: [], outbox: [], state: STATE_OPEN, confirmed: false, sent: 0, received: 0, rejected: 0, unsent: 0, keyUpdateNext: 0,
    compressed: 0, saved: 0,
  };
}

// ---- transports: the draft's socket options ADD / DELETE / QUERY_SSE_Transport ----------------------------

export function addTransport(s: Session, id: number, name: string): void {
  for (let i = 0; i < s.transports.length; i++) if (s.transports[i].id === id) return;
  s.transports.push({ id: id, name: name, up: true });
}

export function deleteTransport(s: Session, id: number): void {
  const keep: Transport[] = [];
  for (let i = 0; i < s.transports.length; i++) if (s.transports[i].id !== id) keep.push(s.transports[i]);
  s.transports = keep;
}

/** Marks a transport up or down without forgetting it (a radio that lost its link). */
export function setTransportUp(s: Session, id: number, up: boolean): void {
  for (let i = 0; i < s.transports.length; i++) if (s.transports[i].id === id) s.transports[i].up = up;
}

export function queryTransports(s: Session): Transport[] {
  return s.transports;
}

/** The first live transport in the order they were added, which is the caller's order of preference. */
function route(s: Session): number {
  for (let i = 0; i < s.transports.length; i++) if (s.transports[i].up) return s.transports[i].id;
  return -1;
}

function emit(s: Session, bytes: Bytes): boolean {
  const t = route(s);
  if (t < 0) {
    s.unsent = s.unsent + 1;
    return false;
  }
  s.outbox.push({ transport: t, bytes: bytes });
  return true;
}

function sealAndEmit(s: Session, payload: Bytes, flags: number, now: number): boolean {
  if (s.state !== STATE_OPEN) return false;
  // No route: nothing is sealed, so no sequence number is spent on a record that would go nowhere.
  if (route(s) < 0) {
    s.unsent = s.unsent + 1;
    return false;
  }
  const r = outboundSeal(s.out, payload, flags, now);
  if (typeof r === "number") return false;
  s.sent = s.sent + 1;
  return emit(s, r);
}

/**
 * Seals and queues application data, compressed with GPComp where the policy says so and it saves bytes;
 * false if the session is closed, the payload too long, or no route.
 */
export function sessionSend(s: Session, payload: Bytes, now: number): boolean {
  const policy = s.out.policy;
  const packed = policy.compress ? gpcompPack(policy.codec, payload) : undefined;
  if (packed === undefined) return sealAndEmit(s, payload, 0, now);
  const sent = sealAndEmit(s, packed, FLAG_GPCOMP, now);
  if (sent) {
    s.compressed = s.compressed + 1;
    s.saved = s.saved + payload.length - packed.length;
  }
  return sent;
}

/** Seals and queues a control record (FLAG_CONTROL) whose payload is the one byte `what`. */
export function sessionControl(s: Session, what: number, now: number): boolean {
  const m = alloc(1);
  m[0] = what;
  return sealAndEmit(s, m, FLAG_CONTROL, now);
}

/** Closes cleanly: an authenticated CLOSE record, then nothing more is sent or accepted. */
export function sessionClose(s: Session, now: number): void {
  if (s.state !== STATE_OPEN) return;
  sessionControl(s, CTRL_CLOSE, now);
  s.state = STATE_CLOSED;
}

/** Aborts with SVC's error signal: 16 zero bytes, no cause given. A new handshake is needed after it. */
export function sessionAbort(s: Session): void {
  if (s.state !== STATE_OPEN) return;
  emit(s, errorPacket());
  s.state = STATE_CLOSED;
}

/**
 * Takes in one packet from transport `tid`. Returns RX_DATA (a payload was appended to s.inbox),
 * RX_CONTROL, RX_CLOSED, or minus a REJECT_* code (the packet was dropped and counted; nothing is sent).
 */
export function sessionReceive(s: Session, packet: Bytes, tid: number, now: number): number {
  if (s.state !== STATE_OPEN) return RX_CLOSED;
  if (isErrorPacket(packet)) {
    s.state = STATE_CLOSED;
    return RX_CLOSED;
  }
  const retired = s.inb.onRetired;
  const r = inboundOpen(s.inb, packet, now);
  if (typeof r === "number") {
    s.rejected = s.rejected + 1;
    // The record came under our retired key: the peer has not moved on (the last request may have been
    // lost), so ask again, at most once per KEY_UPDATE_EVERY_MS.
    if (s.inb.onRetired !== retired && now >= s.keyUpdateNext) {
      s.keyUpdateNext = now + KEY_UPDATE_EVERY_MS;
      const m = alloc(2);
      m[0] = CTRL_KEY_UPDATE;
      m[1] = (s.inb.cur.epoch.index + 1) & 0xff;
      sealAndEmit(s, m, FLAG_CONTROL, now);
    }
    return -r;
  }
  s.confirmed = true;
  s.received = s.received + 1;
  // GPComp: decompressed after the record opened (the tag covers what was sent), before anything reads it.
  const payload = (r.header.flags & FLAG_GPCOMP) === 0 ? r.payload : gpcompUnpack(s.inb.policy.codec, r.payload);
  if (typeof payload === "number") {
    s.rejected = s.rejected + 1;
    return -payload;
  }
  if ((r.header.flags & FLAG_CONTROL) === 0) {
    s.inbox.push(payload);
    return RX_DATA;
  }
  const what = payload.length > 0 ? payload[0] : 0;
  if (what === CTRL_CLOSE) {
    s.state = STATE_CLOSED;
    return RX_CLOSED;
  }
  if (what === CTRL_KEY_UPDATE) keyUpdateRequested(s, payload, now);
  return RX_CONTROL;
}

/**
 * A KEY_UPDATE request from the peer opened: step the sending key if it is the one just below the index asked
 * for (mod 256). A copy that arrives after the step, or a request for a key already left, does nothing, so
 * however many copies come the sender moves once and never past the key the peer can derive.
 */
export function keyUpdateRequested(s: Session, payload: Bytes, now: number): void {
  if (payload.length > 1 && ((payload[1] - s.out.epoch.index) & 0xff) === 1) outboundRekey(s.out, now);
}

/** Hands the queued packets to the caller (which puts them on their transports). */
export function sessionTakeOutput(s: Session): Outgoing[] {
  const o = s.outbox;
  s.outbox = [];
  return o;
}

/** Hands over the received application payloads. */
export function sessionTakeInbox(s: Session): Bytes[] {
  const i = s.inbox;
  s.inbox = [];
  return i;
}

// ---- persistence: a board that loses power resumes its session without a new handshake ------------------

/**
 * The session's state as a string for storage: traffic secrets, key indices, SPIs. Sequence numbers are not
 * in it: they are reserved in the SA's own storage, and a restored session skips past every reservation.
 * Save again after each rekey (the secret moves on and the old one must not survive in storage).
 */
export function sessionSave(s: Session): string {
  return [
    toHex(s.id), toHex(s.peer), s.initiator ? "i" : "r",
    toHex(s.out.secret), formatDecimal(s.out.epoch.index), formatDecimal(s.out.spi),
    toHex(s.inb.secret), formatDecimal(s.inb.cur.epoch.index), formatDecimal(s.inb.spi),
  ].join(",");
}

/** The inverse of sessionSave; undefined for a string that is not one. */
export function sessionRestore(policy: SaPolicy, saved: string, now: number): Session | undefined {
  const f = saved.split(",");
  if (f.length !== 9) return undefined;
  const id = fromHex(f[0]);
  const peer = fromHex(f[1]);
  const outSecret = fromHex(f[3]);
  const inSecret = fromHex(f[6]);
  if (id === undefined || peer === undefined || outSecret === undefined || inSecret === undefined) return undefined;
  const initiator = f[2] === "i";
  const inb = inboundNew(policy, inSecret, parseDecimal(f[7]), parseDecimal(f[8]));
  // The receive window did not survive: refuse the saved key and ask the peer to move to the next one,
  // so no record sent before the power loss can be replayed into the restored session.
  inb.wantRekey = true;
  return {
    id: id, peer: peer, initiator: initiator,
    out: outboundNew(policy, outSecret, parseDecimal(f[4]), parseDecimal(f[5]), tagOf(id, initiator), now),
    inb: inb,
    transports: [], inbox: [], outbox: [], state: STATE_OPEN, confirmed: true, sent: 0, received: 0, rejected: 0, unsent: 0, keyUpdateNext: 0,
    compressed: 0, saved: 0,
  };
}
