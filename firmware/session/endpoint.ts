// An endpoint: one side of one peer relationship, from the first handshake message to the session and
// on through re-handshakes. It is the state machine the board runtime, the gateway and the simulator
// drive with the same four calls: epStart, epInput, epPoll (timers, sliced X25519), epTakeOutput.
//
//   initiator: IDLE -> (keygen) -> WAIT (for R1 or R2) -> (X25519 work) -> OPEN -> confirmed
//   responder: IDLE -> WAIT (order R: R1 sent) -> OPEN (sends CONFIRM) ; order I: on I1 -> OPEN
//
// A handshake that does not complete within retryMs starts again with fresh keys and nonces; a session
// whose peer never confirms is abandoned the same way. An initiator's later tries wait longer, up to 8
// times retryMs, each by a random share (binary exponential backoff, as on any shared channel). Each side
// confirms a new session with an authenticated CONFIRM control record (the responder at once, the initiator
// on the responder's), so neither sends for long into a session the other does not have.
import { Bytes, fdiv, shl } from "#target";
import { CryptoProvider, KeyPair } from "../crypto/provider";
import {
  dhI1, dhI1Finish, dhI1FinishNeeds, dhI1Needs, dhI2, dhI2Needs, dhR1, dhR1Finish, dhR2, DhInitiator, DhNeed, DhPending, DhResponder,
  Established,
} from "../handshake/dh";
import { pskConfirm, pskI1, pskI1Finish, pskI2, pskR1, pskR1Finish, pskR2, PskInitiator, PskKeys, PskPending, PskResponder } from "../handshake/psk";
import { messageType, MSG_DH_I1, MSG_DH_I2, MSG_DH_R1, MSG_DH_R2, MSG_PSK_I1, MSG_PSK_I2, MSG_PSK_R1, MSG_PSK_R2, NONCE_SIZE } from "../handshake/wire";
import { DhWork, workStart, workStep } from "../handshake/work";
import { SaPolicy } from "./sa";
import {
  addTransport, Outgoing, RX_CLOSED, Session, sessionControl, sessionNew, sessionReceive, sessionTakeInbox, sessionTakeOutput, STATE_OPEN,
} from "./session";
import { spiAllocate } from "./spi";

/** The SPI of a compact record (its first three bytes), to pick the session it belongs to. */
function recordSpi(b: Bytes): number {
  return shl(b[0], 16) | shl(b[1], 8) | b[2];
}

export const EP_IDLE = 0;
export const EP_WAIT = 1;
export const EP_OPEN = 2;
export const EP_CLOSED = 3;

/** The control record a responder sends as soon as its session exists (the key confirmation). */
export const CTRL_CONFIRM = 3;

export type EndpointConfig = {
  initiator: boolean;
  dh: boolean;
  /** true: the responder speaks first (SVC's order R); false: the initiator does (order I, LoRa). */
  responderFirst: boolean;
  p: CryptoProvider;
  policy: SaPolicy;
  /** Ladder steps per epPoll for the portable X25519; 0 computes at once with the provider. */
  sliceSteps: number;
  retryMs: number;
  dhI: DhInitiator | undefined;
  dhR: DhResponder | undefined;
  pskI: PskInitiator | undefined;
  pskR: PskResponder | undefined;
  /** The responder's key store for a psk device (to evolve it on confirmation). */
  pskStore: ((this: void, device: Bytes) => PskKeys | undefined) | undefined;
  /** Whether an SPI is in use by another SA of this receiver. */
  spiLive: (this: void, spi: number) => boolean;
};

export type Endpoint = {
  cfg: EndpointConfig;
  state: number;
  since: number;
  spi: number;
  eph: KeyPair | undefined;
  dhPending: DhPending | undefined;
  pskPending: PskPending | undefined;
  work: DhWork | undefined;
  /** The handshake message that started the X25519 work in progress. */
  workMsg: Bytes | undefined;
  pskKey: Bytes | undefined;
  session: Session | undefined;
  /** The confirmed session a new, not yet confirmed handshake would replace: kept until the new one confirms. */
  old: Session | undefined;
  confirmed: boolean;
  /** Unconfirmed handshakes in a row: a psk device alternates between its current and previous key. */
  tries: number;
  out: Bytes[];
  handshakes: number;
  failures: number;
  transport: number;
  /** A record that came while our X25519 work was still running (the responder's CONFIRM in order I): taken up once the session exists. */
  early: Bytes | undefined;
  /**
   * An R2 that came on the handshake's link while X25519 work on another R2 was running, tried if that one
   * fails. A LoRa board hears every device's R2 and cannot tell its own by the bytes, and a sliced check
   * takes seconds (esp32-espruino: about 13 s): without this, its own R2 arriving meanwhile was dropped.
   * One is enough: the gateway's 10 % downlink duty cycle puts its R2s about 25 s apart on the air.
   */
  held: Bytes | undefined;
  /** How long this try waits before the next (the initiator's backoff; retryMs on the responder). */
  retryAfter: number;
};

export function epNew(cfg: EndpointConfig): Endpoint {
  return {
    cfg: cfg, state: EP_IDLE, since: 0, spi: 0, eph: undefined, dhPending: undefined, pskPending: undefined, work: undefined,
    workMsg: undefined, pskKey: undefined, session: undefined, old: undefined, confirmed: false, tries: 0, out: [], handshakes: 0,
    failures: 0, transport: 1, early: undefined, held: undefined,
    retryAfter: cfg.retryMs,
  };
}

function freshSpi(ep: Endpoint): number {
  return spiAllocate(ep.cfg.p.random, ep.cfg.spiLive);
}

function open(ep: Endpoint, est: Established, now: number): void {
  const s = sessionNew(ep.cfg.policy, est, now);
  // A handshake that anyone could have started (a forged or replayed I1) must not end a confirmed session.
  if (ep.session !== undefined && ep.confirmed && ep.session.state === STATE_OPEN) ep.old = ep.session;
  addTransport(s, ep.transport, "link");
  ep.session = s;
  ep.state = EP_OPEN;
  ep.since = now;
  ep.confirmed = false;
  ep.handshakes = ep.handshakes + 1;
  // The handshake's state is spent (a board would otherwise carry a transcript for the session's life).
  ep.eph = undefined;
  ep.pskPending = undefined;
  ep.dhPending = undefined;
  if (!ep.cfg.initiator) sessionControl(s, CTRL_CONFIRM, now);
}

/** Takes over a session restored from storage (a board after a power cycle): open and confirmed, as it was. */
export function epAdopt(ep: Endpoint, s: Session, now: number): void {
  ep.session = s;
  ep.state = EP_OPEN;
  ep.since = now;
  ep.confirmed = true;
}

/** Starts (or restarts) the handshake: the side that speaks first sends its first message. */
export function epStart(ep: Endpoint, now: number): void {
  const c = ep.cfg;
  ep.state = EP_WAIT;
  ep.since = now;
  ep.session = undefined;
  ep.old = undefined;
  ep.work = undefined;
  ep.held = undefined;
  ep.spi = freshSpi(ep);
  if (c.initiator) {
    // Boards that failed together (a LoRa boot storm: twelve hellos of 2.5 s on three channels) must not
    // keep retrying together, nor as often as when the channel was free.
    const span = c.retryMs * (shl(1, ep.tries < 3 ? ep.tries : 3) - 1);
    ep.retryAfter = c.retryMs + fdiv(span, 256) * c.p.random(1)[0];
    ep.eph = (SESAME_DH && (!SESAME_PSK || c.dh)) ? c.p.keyPair() : undefined;
    if (!(SESAME_DH && (!SESAME_PSK || c.dh))) {
      // Resynchronisation: when handshakes with the current key go unanswered, the gateway may still be
      // at the previous one (it missed our confirmation), so every other attempt uses that.
      const keys = c.pskI!.keys;
      ep.pskKey = ep.tries % 2 === 1 && keys.previous !== undefined ? keys.previous : keys.current;
    }
    if (!c.responderFirst) {
      if ((SESAME_DH && (!SESAME_PSK || c.dh))) begin(ep, dhI1Needs(c.dhI!, ep.eph!), undefined, now);
      else {
        ep.pskPending = pskI1(c.pskI!, ep.pskKey!, c.p.random(NONCE_SIZE), ep.spi);
        ep.out.push(ep.pskPending.msg);
      }
    }
    return;
  }
  if (!SESAME_RESPONDER || !c.responderFirst) return;
  if ((SESAME_DH && (!SESAME_PSK || c.dh))) {
    ep.dhPending = dhR1(c.dhR!, c.p.keyPair(), ep.spi);
    ep.out.push(ep.dhPending.msg);
  } else {
    ep.pskPending = pskR1(c.p, c.p.random(NONCE_SIZE), ep.spi);
    ep.out.push(ep.pskPending.msg);
  }
}

function begin(ep: Endpoint, needs: DhNeed[] | number, msg: Bytes | undefined, now: number): void {
  if (typeof needs === "number") return fail(ep);
  ep.work = workStart(ep.cfg.p, needs, ep.cfg.sliceSteps);
  ep.workMsg = msg;
  if (ep.work.done) afterWork(ep, now); // computed at once (a host, native X25519): no need to wait a tick
}

function fail(ep: Endpoint): void {
  ep.failures = ep.failures + 1;
}

/** Finishes the initiator's step once its X25519 work is done. */
function afterWork(ep: Endpoint, now: number): void {
  const c = ep.cfg;
  const dhs = ep.work!.results;
  const msg = ep.workMsg;
  ep.work = undefined;
  if (msg === undefined) {
    const pend = dhI1(c.dhI!, ep.eph!, dhs, ep.spi);
    if (typeof pend === "number") return fail(ep);
    ep.dhPending = pend;
    ep.out.push(pend.msg);
    // The retry timer runs from when I1 leaves, not from when its X25519 work began: a board that slices
    // its X25519 finely would otherwise start over before its peer ever saw the message.
    ep.since = now;
  } else if (messageType(msg) === MSG_DH_R1) {
    const r = dhI2(c.dhI!, ep.eph!, msg, dhs, ep.spi);
    if (typeof r === "number") return fail(ep);
    ep.out.push(r.msg);
    open(ep, r.est, now);
  } else {
    const r = dhI1Finish(c.dhI!, ep.dhPending!, msg, dhs);
    const held = ep.held;
    ep.held = undefined;
    if (typeof r !== "number") return open(ep, r, now);
    fail(ep);
    if (held !== undefined) begin(ep, dhI1FinishNeeds(c.dhI!, ep.dhPending!, held), held, now);
  }
}

/** The responder's answer to a first message from the initiator (order I), or its last step (order R). */
function respond(ep: Endpoint, msg: Bytes, type: number, now: number): void {
  const c = ep.cfg;
  if (type === MSG_DH_I1 || type === MSG_PSK_I1) {
    // A new initiator hello restarts this endpoint's handshake, whatever state it was in.
    ep.spi = freshSpi(ep);
    if (type === MSG_DH_I1) {
      const r = dhR2(c.dhR!, c.p.keyPair, msg, c.p.x25519, ep.spi);
      if (typeof r === "number") return fail(ep);
      ep.out.push(r.msg);
      return open(ep, r.est, now);
    }
    const r = pskR2(c.pskR!, msg, c.p.random(NONCE_SIZE), ep.spi);
    if (typeof r === "number") return fail(ep);
    ep.pskKey = r.key;
    ep.out.push(r.msg);
    return open(ep, r.est, now);
  }
  if (ep.state !== EP_WAIT) return fail(ep);
  if (type === MSG_DH_I2 && ep.dhPending !== undefined) {
    const r = dhR1Finish(c.dhR!, ep.dhPending, msg, c.p.x25519);
    if (typeof r === "number") return fail(ep);
    ep.dhPending = undefined;
    return open(ep, r, now);
  }
  if (type === MSG_PSK_I2 && ep.pskPending !== undefined) {
    const r = pskR1Finish(c.pskR!, ep.pskPending, msg);
    if (typeof r === "number") return fail(ep);
    ep.pskPending = undefined;
    ep.pskKey = r.key;
    return open(ep, r.est, now);
  }
  fail(ep);
}

/** The initiator's handling of the responder's message. */
function answer(ep: Endpoint, msg: Bytes, type: number, now: number): void {
  const c = ep.cfg;
  // A fresh R1 while open: the responder lost our session (or our confirmation) and starts again.
  if (ep.state === EP_OPEN && c.responderFirst && (type === MSG_DH_R1 || type === MSG_PSK_R1)) epStart(ep, now);
  if (SESAME_DH && type === MSG_DH_R2 && !c.responderFirst && ep.state === EP_WAIT && ep.work !== undefined && ep.workMsg !== undefined) {
    ep.held = msg; // the newest: the older one waited longest for a check it would not get before this one's
    return;
  }
  if (ep.state !== EP_WAIT || ep.work !== undefined) return fail(ep);
  if (SESAME_DH && type === MSG_DH_R1 && c.responderFirst) return begin(ep, dhI2Needs(c.dhI!, ep.eph!, msg), msg, now);
  if (SESAME_DH && type === MSG_DH_R2 && !c.responderFirst && ep.dhPending !== undefined) {
    return begin(ep, dhI1FinishNeeds(c.dhI!, ep.dhPending, msg), msg, now);
  }
  if (SESAME_PSK && type === MSG_PSK_R1 && c.responderFirst) {
    const r = pskI2(c.pskI!, ep.pskKey!, msg, c.p.random(NONCE_SIZE), ep.spi);
    if (typeof r === "number") return fail(ep);
    ep.out.push(r.msg);
    return open(ep, r.est, now);
  }
  if (SESAME_PSK && type === MSG_PSK_R2 && !c.responderFirst && ep.pskPending !== undefined) {
    const r = pskI1Finish(c.pskI!, ep.pskPending, msg);
    if (typeof r === "number") return fail(ep);
    return open(ep, r, now);
  }
  fail(ep);
}

function confirm(ep: Endpoint, now: number): void {
  ep.confirmed = true;
  ep.tries = 0;
  ep.old = undefined;
  const c = ep.cfg;
  // The initiator answers the responder's CONFIRM with its own, so the responder knows at once too.
  if (c.initiator && ep.session !== undefined) sessionControl(ep.session, CTRL_CONFIRM, now);
  if (!SESAME_PSK || (SESAME_DH && (!SESAME_PSK || c.dh)) || ep.pskKey === undefined || ep.session === undefined) return;
  const store = c.initiator ? c.pskI!.keys : c.pskStore !== undefined ? c.pskStore(ep.session.peer) : undefined;
  if (store !== undefined) pskConfirm(c.p, store, ep.pskKey, ep.session.id);
  ep.pskKey = undefined;
}

/**
 * Takes in one packet from transport `tid`. Handshake messages drive the handshake (failures are silent and
 * counted); everything else goes to the session. Returns the session's RX_* result, or 0.
 */
export function epInput(ep: Endpoint, packet: Bytes, tid: number, now: number): number {
  const type = messageType(packet);
  if (type > 0) {
    const fromInitiator = type === MSG_DH_I1 || type === MSG_DH_I2 || type === MSG_PSK_I1 || type === MSG_PSK_I2;
    if (ep.cfg.initiator === fromInitiator) fail(ep); // reflected: our own kind of message
    // An initiator's handshake runs on one link, and its answers come back on it: a handshake message on
    // another link is another device's (a board hears every LoRa downlink), and acting on it would move
    // the handshake off its link, or spend a sliced X25519 on someone else's R2 while its own is dropped.
    else if (!SESAME_RESPONDER || ep.cfg.initiator) {
      if (tid === ep.transport) answer(ep, packet, type, now);
      else fail(ep);
    } else {
      ep.transport = tid;
      respond(ep, packet, type, now);
    }
    epPoll(ep, now);
    return 0;
  }
  if (ep.session === undefined) {
    // The responder's CONFIRM can come while the last X25519 is still being worked out: kept for then, if it
    // is this handshake's (its link, its SPI), not another device's record heard on LoRa in between.
    if (SESAME_DH && ep.work !== undefined && tid === ep.transport && packet.length >= 3 && recordSpi(packet) === ep.spi) ep.early = packet;
    return 0;
  }
  const old = ep.old;
  if (old !== undefined && packet.length >= 3 && recordSpi(packet) === old.inb.spi) return sessionReceive(old, packet, tid, now);
  const r = sessionReceive(ep.session, packet, tid, now);
  if (ep.session.confirmed && !ep.confirmed) confirm(ep, now);
  if (r === RX_CLOSED) ep.state = EP_CLOSED;
  return r;
}

/** Timers and sliced work: call on every tick. Returns true while X25519 work is in progress. */
export function epPoll(ep: Endpoint, now: number): boolean {
  const c = ep.cfg;
  if (SESAME_DH && ep.work !== undefined) {
    if (workStep(ep.work, c.sliceSteps > 0 ? c.sliceSteps : 255)) {
      afterWork(ep, now);
      // (Kept while a held R2 is being worked out: the CONFIRM may be its.)
      if (ep.work === undefined) {
        const early = ep.early;
        ep.early = undefined;
        if (early !== undefined && ep.session !== undefined) epInput(ep, early, ep.transport, now);
      }
    }
    return ep.work !== undefined;
  }
  const stale = (ep.state === EP_WAIT || (ep.state === EP_OPEN && !ep.confirmed)) && now - ep.since >= (c.initiator ? ep.retryAfter : c.retryMs);
  if (stale && (c.initiator || c.responderFirst)) {
    ep.tries = ep.tries + 1;
    epStart(ep, now);
  }
  return false;
}

/**
 * True when data may be sent: on the initiator once the responder has confirmed the session; on the
 * responder as soon as the session exists (what it sends opens only for the genuine initiator, and the
 * session counts as confirmed once the initiator's first record opens).
 */
export function epReady(ep: Endpoint): boolean {
  const s = ep.session;
  return ep.state === EP_OPEN && (ep.confirmed || !ep.cfg.initiator) && s !== undefined && s.state === STATE_OPEN;
}

/** The session to send on: the newest once it is usable, else a confirmed one it has not yet replaced. */
export function epSession(ep: Endpoint): Session | undefined {
  return ep.old !== undefined && !ep.confirmed ? ep.old : ep.session;
}

/** Application payloads received on the endpoint's sessions, oldest session first. */
export function epTakeInbox(ep: Endpoint): Bytes[] {
  const out: Bytes[] = [];
  const all = [ep.old, ep.session];
  for (let k = 0; k < 2; k++) {
    const s = all[k];
    if (s === undefined) continue;
    const got = sessionTakeInbox(s);
    for (let i = 0; i < got.length; i++) out.push(got[i]);
  }
  return out;
}

/** Packets to put on the wire: handshake messages (on the transport the handshake uses), then records. */
export function epTakeOutput(ep: Endpoint): Outgoing[] {
  const o: Outgoing[] = [];
  for (let i = 0; i < ep.out.length; i++) o.push({ transport: ep.transport, bytes: ep.out[i] });
  ep.out = [];
  const all = [ep.old, ep.session];
  for (let k = 0; k < 2; k++) {
    const s = all[k];
    if (s === undefined) continue;
    const rec = sessionTakeOutput(s);
    for (let i = 0; i < rec.length; i++) o.push(rec[i]);
  }
  return o;
}
