// The handshake's symmetric state, after the Noise framework (noiseprotocol.org, section 5.2): a chaining
// key `ck` that absorbs every DH result, a hash `h` of everything sent, and a key `k` for the fields that
// travel encrypted. Binding the protocol name (version, mode, order, suite) into `h` from the first byte
// leaves nothing to downgrade: two parties that disagree on any of it derive different keys.
import { alloc, Bytes } from "#target";
import { ascii, concat, slice, wipe } from "../bytes";
import { CryptoProvider, hmacWith } from "../crypto/provider";

/** Handshake AEAD: AES-128-CCM, 8-byte tag, 13-byte nonce (the constrained suite's). */
export const HS_TAG = 8;
const HS_NONCE = 13;

export type Transcript = { ck: Bytes; h: Bytes; k: Bytes | undefined; n: number };

export function transcriptStart(p: CryptoProvider, protocolName: string): Transcript {
  const h = p.sha256(ascii(protocolName));
  return { ck: slice(h, 0, 32), h: h, k: undefined, n: 0 };
}

/** An independent copy, so that a forged message can be tried against pending state without spoiling it. */
export function transcriptCopy(t: Transcript): Transcript {
  return { ck: slice(t.ck, 0, t.ck.length), h: slice(t.h, 0, t.h.length), k: t.k === undefined ? undefined : slice(t.k, 0, t.k.length), n: t.n };
}

export function mixHash(p: CryptoProvider, t: Transcript, data: Bytes): void {
  t.h = p.sha256(concat(t.h, data));
}

/** HKDF(ck, ikm) with two outputs, as Noise defines it: the new chaining key and a 16-byte AEAD key. */
export function mixKey(p: CryptoProvider, t: Transcript, ikm: Bytes): void {
  const temp = hmacWith(p, t.ck, ikm);
  const one = alloc(1);
  one[0] = 1;
  const ck = hmacWith(p, temp, one);
  const two = alloc(1);
  two[0] = 2;
  const k = hmacWith(p, temp, concat(ck, two));
  wipe(temp);
  wipe(t.ck);
  if (t.k !== undefined) wipe(t.k);
  t.ck = ck;
  t.k = slice(k, 0, 16);
  t.n = 0;
  wipe(k);
}

function nonce(n: number): Bytes {
  const out = alloc(HS_NONCE);
  out[HS_NONCE - 1] = n & 0xff;
  return out;
}

/** Encrypts (or, with no key yet, copies) a field, authenticating the transcript so far; then hashes it. */
export function encryptAndHash(p: CryptoProvider, t: Transcript, plaintext: Bytes): Bytes {
  if (t.k === undefined) {
    mixHash(p, t, plaintext);
    return plaintext;
  }
  const c = p.ccm(t.k, HS_TAG, HS_NONCE).seal(nonce(t.n), t.h, plaintext);
  t.n = t.n + 1;
  mixHash(p, t, c);
  return c;
}

/** The inverse of encryptAndHash; undefined when the tag does not verify. */
export function decryptAndHash(p: CryptoProvider, t: Transcript, sealed: Bytes): Bytes | undefined {
  if (t.k === undefined) {
    mixHash(p, t, sealed);
    return sealed;
  }
  const m = p.ccm(t.k, HS_TAG, HS_NONCE).open(nonce(t.n), t.h, sealed);
  if (m === undefined) return undefined;
  t.n = t.n + 1;
  mixHash(p, t, sealed);
  return m;
}

/**
 * The session's master secret K_M = HMAC(ck, "sesame K_M" || h), once the handshake is over: it depends on
 * every DH result and key mixed in (ck) and on every byte sent (h), nonces included. The transcript's keys
 * are erased.
 */
export function transcriptFinish(p: CryptoProvider, t: Transcript): Bytes {
  const km = hmacWith(p, t.ck, concat(ascii("sesame K_M"), t.h));
  wipe(t.ck);
  if (t.k !== undefined) wipe(t.k);
  t.k = undefined;
  return km;
}
