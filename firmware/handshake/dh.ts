// dh mode: one round trip, mutual authentication with raw static X25519 keys, forward secrecy from
// ephemeral keys, and the initiator's (the device's) identity encrypted. The initiator pins the
// responder's static key; the responder finds the initiator's static key by its key identifier (kid),
// which only travels encrypted. Each side computes at most 4 X25519 operations.
//
// Both orders use the same transcript rules (docs/PROTOCOL.md 2.2):
//   order R (responder first):  R1 = E_R;  I2 = E_I, ee, es, {kid_I}, se
//   order I (initiator first):  I1 = E_I, es, {kid_I};  R2 = E_R, ee, se, {}
// The initiator's proof of its static key is se, which enters the keys after kid_I is sent: the responder
// learns the initiator is genuine when its first record opens (key confirmation), as in Noise.
//
// The X25519 work is split from the logic: a step says which scalar multiplications it needs (`...Needs`),
// the caller computes them (at once on a host, in slices on a slow board) and passes the results in.
import { Bytes } from "#target";
import { copyInto, slice, wipe } from "../bytes";
import { CryptoProvider, KeyPair } from "../crypto/provider";
import {
  decryptAndHash, encryptAndHash, mixHash, mixKey, Transcript, transcriptCopy, transcriptFinish, transcriptStart,
} from "./transcript";
import {
  getSpi, HS_FAIL, KEY_SIZE, KID_SIZE, messageType, MSG_DH_I1, MSG_DH_I2, MSG_DH_R1, MSG_DH_R2, newMessage, PREFIX,
  putSpi, SPI_SIZE, TAG_SIZE,
} from "./wire";

const NAME_R = "sesame/1 dh-R X25519 AES-128-CCM-8 SHA-256";
const NAME_I = "sesame/1 dh-I X25519 AES-128-CCM-8 SHA-256";
const KEY_AT = PREFIX + SPI_SIZE; // where E sits in every dh message
const SEALED_AT = KEY_AT + KEY_SIZE; // where the sealed part starts

export type { KeyPair };

/** A fresh ephemeral key pair from the provider. */
export function keyPair(p: CryptoProvider): KeyPair {
  return p.keyPair();
}

export type DhInitiator = { p: CryptoProvider; kid: Bytes; me: KeyPair; peer: Bytes };
export type DhResponder = { p: CryptoProvider; me: KeyPair; lookup: (this: void, kid: Bytes) => Bytes | undefined };

/** What a completed handshake gives the session layer. */
export type Established = {
  masterKey: Bytes;
  /** The final transcript hash: a session identifier both sides agree on. */
  sessionHash: Bytes;
  localSpi: number;
  peerSpi: number;
  /** The peer's identifier: the initiator's kid (on the responder), the responder's static key (on the initiator). */
  peer: Bytes;
  initiator: boolean;
};

/** Pending state between a side's first and last step. */
export type DhPending = { t: Transcript; eph: KeyPair; spi: number; msg: Bytes };

/** A pair [scalar, u] for X25519. */
export type DhNeed = Bytes[];

function zeroOut(b: Bytes): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc = acc | b[i];
  return acc === 0;
}

/** Mixes DH results into the transcript; false if any is the all-zero output of a low-order point. */
function mixAll(p: CryptoProvider, t: Transcript, dhs: Bytes[]): boolean {
  let ok = true;
  for (let i = 0; i < dhs.length; i++) {
    if (zeroOut(dhs[i])) ok = false;
    mixKey(p, t, dhs[i]);
    wipe(dhs[i]);
  }
  return ok;
}

function begin(p: CryptoProvider, name: string, responderStatic: Bytes): Transcript {
  const t = transcriptStart(p, name);
  mixHash(p, t, responderStatic); // the pinned key is a pre-message, as Noise's "<- s"
  return t;
}

function established(p: CryptoProvider, t: Transcript, local: number, peerSpi: number, peer: Bytes, initiator: boolean): Established {
  const h = slice(t.h, 0, t.h.length);
  return { masterKey: transcriptFinish(p, t), sessionHash: h, localSpi: local, peerSpi: peerSpi, peer: peer, initiator: initiator };
}

function field(m: Bytes, at: number, n: number): Bytes {
  return slice(m, at, at + n);
}

// ---- order R: the responder speaks first --------------------------------------------------------------

/** R1 (responder): announces its ephemeral key and the SPI it allocated for records to it. */
export function dhR1(r: DhResponder, eph: KeyPair, spi: number): DhPending {
  const m = newMessage(MSG_DH_R1);
  putSpi(m, spi);
  copyInto(m, KEY_AT, eph.S, KEY_SIZE);
  const t = begin(r.p, NAME_R, r.me.S);
  mixHash(r.p, t, m);
  return { t: t, eph: eph, spi: spi, msg: m };
}

/** The X25519 work the initiator needs to answer R1: ee, es, se. HS_FAIL if R1 is malformed. */
export function dhI2Needs(i: DhInitiator, eph: KeyPair, r1: Bytes): DhNeed[] | number {
  if (messageType(r1) !== MSG_DH_R1) return HS_FAIL;
  const er = field(r1, KEY_AT, KEY_SIZE);
  return [[eph.s, er], [eph.s, i.peer], [i.me.s, er]];
}

/** I2 (initiator): its ephemeral key, its SPI and its encrypted kid; the session is established. */
export function dhI2(i: DhInitiator, eph: KeyPair, r1: Bytes, dhs: Bytes[], spi: number): { msg: Bytes; est: Established } | number {
  const t = begin(i.p, NAME_R, i.peer);
  mixHash(i.p, t, r1);
  const m = newMessage(MSG_DH_I2);
  putSpi(m, spi);
  copyInto(m, KEY_AT, eph.S, KEY_SIZE);
  mixHash(i.p, t, slice(m, 0, SEALED_AT));
  if (!mixAll(i.p, t, [dhs[0], dhs[1]])) return HS_FAIL;
  const c = encryptAndHash(i.p, t, i.kid);
  copyInto(m, SEALED_AT, c, KID_SIZE + TAG_SIZE);
  if (!mixAll(i.p, t, [dhs[2]])) return HS_FAIL;
  wipe(eph.s);
  return { msg: m, est: established(i.p, t, spi, getSpi(r1), i.peer, true) };
}

/** The responder's last step on I2; `dh` is its (fast) X25519. */
export function dhR1Finish(r: DhResponder, st: DhPending, i2: Bytes, dh: (s: Bytes, u: Bytes) => Bytes): Established | number {
  if (messageType(i2) !== MSG_DH_I2) return HS_FAIL;
  const t = transcriptCopy(st.t);
  const ei = field(i2, KEY_AT, KEY_SIZE);
  mixHash(r.p, t, slice(i2, 0, SEALED_AT));
  if (!mixAll(r.p, t, [dh(st.eph.s, ei), dh(r.me.s, ei)])) return HS_FAIL;
  const kid = decryptAndHash(r.p, t, field(i2, SEALED_AT, KID_SIZE + TAG_SIZE));
  if (kid === undefined) return HS_FAIL;
  const si = r.lookup(kid);
  if (si === undefined) return HS_FAIL;
  if (!mixAll(r.p, t, [dh(st.eph.s, si)])) return HS_FAIL;
  wipe(st.eph.s);
  return established(r.p, t, st.spi, getSpi(i2), kid, false);
}

// ---- order I: the initiator speaks first ----------------------------------------------------------------

/** The X25519 work the initiator needs before sending I1: es. */
export function dhI1Needs(i: DhInitiator, eph: KeyPair): DhNeed[] {
  return [[eph.s, i.peer]];
}

/** I1 (initiator): ephemeral key, SPI, encrypted kid. */
export function dhI1(i: DhInitiator, eph: KeyPair, dhs: Bytes[], spi: number): DhPending | number {
  const t = begin(i.p, NAME_I, i.peer);
  const m = newMessage(MSG_DH_I1);
  putSpi(m, spi);
  copyInto(m, KEY_AT, eph.S, KEY_SIZE);
  mixHash(i.p, t, slice(m, 0, SEALED_AT));
  if (!mixAll(i.p, t, [dhs[0]])) return HS_FAIL;
  copyInto(m, SEALED_AT, encryptAndHash(i.p, t, i.kid), KID_SIZE + TAG_SIZE);
  return { t: t, eph: eph, spi: spi, msg: m };
}

/**
 * R2 (responder): on a valid I1, its ephemeral key, SPI and a tag that proves it holds its static key.
 * The ephemeral key is made (`makeEph`) only once I1 has passed every check, so a junk I1 costs one X25519.
 */
export function dhR2(r: DhResponder, makeEph: () => KeyPair, i1: Bytes, dh: (s: Bytes, u: Bytes) => Bytes, spi: number): { msg: Bytes; est: Established } | number {
  if (messageType(i1) !== MSG_DH_I1) return HS_FAIL;
  const t = begin(r.p, NAME_I, r.me.S);
  const ei = field(i1, KEY_AT, KEY_SIZE);
  mixHash(r.p, t, slice(i1, 0, SEALED_AT));
  if (!mixAll(r.p, t, [dh(r.me.s, ei)])) return HS_FAIL;
  const kid = decryptAndHash(r.p, t, field(i1, SEALED_AT, KID_SIZE + TAG_SIZE));
  if (kid === undefined) return HS_FAIL;
  const si = r.lookup(kid);
  if (si === undefined) return HS_FAIL;
  const eph = makeEph();
  const m = newMessage(MSG_DH_R2);
  putSpi(m, spi);
  copyInto(m, KEY_AT, eph.S, KEY_SIZE);
  mixHash(r.p, t, slice(m, 0, SEALED_AT));
  if (!mixAll(r.p, t, [dh(eph.s, ei), dh(eph.s, si)])) return HS_FAIL;
  wipe(eph.s);
  copyInto(m, SEALED_AT, encryptAndHash(r.p, t, slice(m, 0, 0)), TAG_SIZE);
  return { msg: m, est: established(r.p, t, spi, getSpi(i1), kid, false) };
}

/** The X25519 work the initiator needs on R2: ee, se. HS_FAIL if R2 is malformed. */
export function dhI1FinishNeeds(i: DhInitiator, st: DhPending, r2: Bytes): DhNeed[] | number {
  if (messageType(r2) !== MSG_DH_R2) return HS_FAIL;
  const er = field(r2, KEY_AT, KEY_SIZE);
  return [[st.eph.s, er], [i.me.s, er]];
}

/** The initiator's last step on R2. */
export function dhI1Finish(i: DhInitiator, st: DhPending, r2: Bytes, dhs: Bytes[]): Established | number {
  const t = transcriptCopy(st.t);
  mixHash(i.p, t, slice(r2, 0, SEALED_AT));
  if (!mixAll(i.p, t, [dhs[0], dhs[1]])) return HS_FAIL;
  if (decryptAndHash(i.p, t, field(r2, SEALED_AT, TAG_SIZE)) === undefined) return HS_FAIL;
  wipe(st.eph.s);
  return established(i.p, t, st.spi, getSpi(r2), i.peer, true);
}
