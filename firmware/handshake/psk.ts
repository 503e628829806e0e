// psk mode: for boards where one X25519 takes minutes. Symmetric only: mutual authentication from a
// pre-shared key, fresh nonces from both sides, and a pseudonym (pid) in place of an identifier, derived
// from the current key, so an observer cannot link two sessions of one device. Forward secrecy comes from
// evolving the key after every confirmed session and erasing the key before last (docs/PROTOCOL.md 2.4):
// each side keeps {current, previous}, which also resynchronises a side that missed an update.
//
//   order R (responder first):  R1 = N_R;  I2 = pid, N_I, psk, {}
//   order I (initiator first):  I1 = pid, N_I, psk, {};  R2 = N_R, {}
import { alloc, Bytes } from "#target";
import { ascii, concat, copyInto, slice, wipe } from "../bytes";
import { CryptoProvider, hmacWith } from "../crypto/provider";
import { Established } from "./dh";
import { decryptAndHash, encryptAndHash, mixHash, mixKey, Transcript, transcriptCopy, transcriptFinish, transcriptStart } from "./transcript";
import {
  getSpi, HS_FAIL, messageType, MSG_PSK_I1, MSG_PSK_I2, MSG_PSK_R1, MSG_PSK_R2, newMessage, NONCE_SIZE, PID_SIZE, PREFIX,
  putSpi, SPI_SIZE, TAG_SIZE,
} from "./wire";

const NAME_R = "sesame/1 psk-R AES-128-CCM-8 SHA-256";
const NAME_I = "sesame/1 psk-I AES-128-CCM-8 SHA-256";
const PID_AT = PREFIX + SPI_SIZE;

/** The key store of one device, on either side: the key to use, and the one before it. */
export type PskKeys = { current: Bytes; previous: Bytes | undefined };

/** The responder's view of a pid: which device, and which of its keys the pid came from. */
export type PskMatch = { device: Bytes; key: Bytes };

export type PskInitiator = { p: CryptoProvider; id: Bytes; keys: PskKeys };
export type PskResponder = { p: CryptoProvider; lookup: (this: void, pid: Bytes) => PskMatch | undefined };

export type PskPending = { t: Transcript; spi: number; key: Bytes; msg: Bytes };

/** The pseudonym a key is known by on the wire: 4 bytes of HMAC(key, "sesame pid"). */
export function pskPid(p: CryptoProvider, key: Bytes): Bytes {
  return slice(hmacWith(p, key, ascii("sesame pid")), 0, PID_SIZE);
}

/** The next key, bound to the session that confirmed the current one. */
export function pskEvolve(p: CryptoProvider, key: Bytes, sessionHash: Bytes): Bytes {
  return hmacWith(p, key, concat(ascii("sesame evolve"), sessionHash));
}

/**
 * Called when a session made with `used` is confirmed (the peer's first record opened): the store moves to
 * evolve(used) and keeps `used` as previous, erasing anything older. The peer holds `used` at least.
 */
export function pskConfirm(p: CryptoProvider, keys: PskKeys, used: Bytes, sessionHash: Bytes): void {
  const next = pskEvolve(p, used, sessionHash);
  const keep = slice(used, 0, used.length);
  if (keys.previous !== undefined) wipe(keys.previous);
  wipe(keys.current);
  keys.previous = keep;
  keys.current = next;
}

/**
 * The transcript after `parts`, keyed by the pre-shared key mixed together with the hash of everything so
 * far: the nonces enter the chaining key, so no two sessions under one key share a handshake key or K_M.
 */
function authed(p: CryptoProvider, name: string, key: Bytes, parts: Bytes[]): Transcript {
  const t = transcriptStart(p, name);
  for (let i = 0; i < parts.length; i++) mixHash(p, t, parts[i]);
  mixKey(p, t, concat(key, t.h));
  return t;
}

function est(p: CryptoProvider, t: Transcript, local: number, peerSpi: number, peer: Bytes, initiator: boolean): Established {
  const h = slice(t.h, 0, t.h.length);
  return { masterKey: transcriptFinish(p, t), sessionHash: h, localSpi: local, peerSpi: peerSpi, peer: peer, initiator: initiator };
}

function withNonce(type: number, spi: number, nonce: Bytes, at: number): Bytes {
  const m = newMessage(type);
  putSpi(m, spi);
  copyInto(m, at, nonce, NONCE_SIZE);
  return m;
}

function empty(): Bytes {
  return alloc(0);
}

// ---- order R -------------------------------------------------------------------------------------------

export function pskR1(p: CryptoProvider, nonce: Bytes, spi: number): PskPending {
  const m = withNonce(MSG_PSK_R1, spi, nonce, PREFIX + SPI_SIZE);
  return { t: transcriptStart(p, NAME_R), spi: spi, key: empty(), msg: m };
}

/** I2 (initiator), with `key` (current, or previous when resynchronising). */
export function pskI2(i: PskInitiator, key: Bytes, r1: Bytes, nonce: Bytes, spi: number): { msg: Bytes; est: Established } | number {
  if (messageType(r1) !== MSG_PSK_R1) return HS_FAIL;
  const m = withNonce(MSG_PSK_I2, spi, nonce, PID_AT + PID_SIZE);
  copyInto(m, PID_AT, pskPid(i.p, key), PID_SIZE);
  const head = slice(m, 0, m.length - TAG_SIZE);
  const t = authed(i.p, NAME_R, key, [r1, head]);
  copyInto(m, head.length, encryptAndHash(i.p, t, empty()), TAG_SIZE);
  return { msg: m, est: est(i.p, t, spi, getSpi(r1), i.id, true) };
}

export function pskR1Finish(r: PskResponder, st: PskPending, i2: Bytes): { est: Established; key: Bytes } | number {
  if (messageType(i2) !== MSG_PSK_I2) return HS_FAIL;
  const match = r.lookup(slice(i2, PID_AT, PID_AT + PID_SIZE));
  if (match === undefined) return HS_FAIL;
  const head = slice(i2, 0, i2.length - TAG_SIZE);
  const t = authed(r.p, NAME_R, match.key, [st.msg, head]);
  if (decryptAndHash(r.p, t, slice(i2, head.length, i2.length)) === undefined) return HS_FAIL;
  return { est: est(r.p, t, st.spi, getSpi(i2), match.device, false), key: match.key };
}

// ---- order I -------------------------------------------------------------------------------------------

export function pskI1(i: PskInitiator, key: Bytes, nonce: Bytes, spi: number): PskPending {
  const m = withNonce(MSG_PSK_I1, spi, nonce, PID_AT + PID_SIZE);
  copyInto(m, PID_AT, pskPid(i.p, key), PID_SIZE);
  const head = slice(m, 0, m.length - TAG_SIZE);
  const t = authed(i.p, NAME_I, key, [head]);
  copyInto(m, head.length, encryptAndHash(i.p, t, empty()), TAG_SIZE);
  return { t: t, spi: spi, key: key, msg: m };
}

export function pskR2(r: PskResponder, i1: Bytes, nonce: Bytes, spi: number): { msg: Bytes; est: Established; key: Bytes } | number {
  if (messageType(i1) !== MSG_PSK_I1) return HS_FAIL;
  const match = r.lookup(slice(i1, PID_AT, PID_AT + PID_SIZE));
  if (match === undefined) return HS_FAIL;
  const head = slice(i1, 0, i1.length - TAG_SIZE);
  const t = authed(r.p, NAME_I, match.key, [head]);
  if (decryptAndHash(r.p, t, slice(i1, head.length, i1.length)) === undefined) return HS_FAIL;
  const m = withNonce(MSG_PSK_R2, spi, nonce, PREFIX + SPI_SIZE);
  mixHash(r.p, t, slice(m, 0, m.length - TAG_SIZE));
  mixKey(r.p, t, t.h); // N_R enters the key: R2's tag is fresh even when a replayed I1 repeats N_I
  copyInto(m, m.length - TAG_SIZE, encryptAndHash(r.p, t, empty()), TAG_SIZE);
  return { msg: m, est: est(r.p, t, spi, getSpi(i1), match.device, false), key: match.key };
}

export function pskI1Finish(i: PskInitiator, st: PskPending, r2: Bytes): Established | number {
  if (messageType(r2) !== MSG_PSK_R2) return HS_FAIL;
  const t = transcriptCopy(st.t);
  mixHash(i.p, t, slice(r2, 0, r2.length - TAG_SIZE));
  mixKey(i.p, t, t.h);
  if (decryptAndHash(i.p, t, slice(r2, r2.length - TAG_SIZE, r2.length)) === undefined) return HS_FAIL;
  return est(i.p, t, st.spi, getSpi(r2), i.id, true);
}
