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

/**
 * `k` is the AEAD key of the last mixKey, or undefined while it is not derived yet: it is derived from `prk`
 * (that mixKey's HKDF PRK) when a field is first sealed or opened under it, so a key that the next mixKey
 * replaces unused (two DH results mixed in a row, or the last one before the handshake ends) costs no HMAC:
 * two to four of a dh handshake's twenty.
 */
export type Transcript = { ck: Bytes; h: Bytes; k: Bytes | undefined; prk: Bytes | undefined; n: number };

export function transcriptStart(p: CryptoProvider, protocolName: string): Transcript {
  const h = p.sha256(ascii(protocolName));
  return { ck: slice(h, 0, 32), h: h, k: undefined, prk: undefined, n: 0 };
}

/** An independent copy, so that a forged message can be tried against pending state without spoiling it. */
export function transcriptCopy(t: Transcript): Transcript {
  return { ck: slice(t.ck, 0, t.ck.length), h: slice(t.h, 0, t.h.length), k: copyOf(t.k), prk: copyOf(t.prk), n: t.n };
}

function copyOf(b: Bytes | undefined): Bytes | undefined {
  return b === undefined ? undefined : slice(b, 0, b.length);
}

export function mixHash(p: CryptoProvider, t: Transcript, data: Bytes): void {
  t.h = p.sha256(concat(t.h, data));
}

/**
 * HKDF(ck, ikm) with two outputs, as Noise defines it: the new chaining key now, and the 16-byte AEAD key
 * when a field first needs it (cipherKey).
 */
export function mixKey(p: CryptoProvider, t: Transcript, ikm: Bytes): void {
  const prk = hmacWith(p, t.ck, ikm);
  const one = alloc(1);
  one[0] = 1;
  const ck = hmacWith(p, prk, one);
  wipe(t.ck);
  dropKeys(t);
  t.ck = ck;
  t.prk = prk;
  t.n = 0;
}

function dropKeys(t: Transcript): void {
  if (t.k !== undefined) wipe(t.k);
  if (t.prk !== undefined) wipe(t.prk);
  t.k = undefined;
  t.prk = undefined;
}

/** The AEAD key of the last mixKey: HKDF's second output, HMAC(prk, ck || 0x02), cut to 16 bytes. */
function cipherKey(p: CryptoProvider, t: Transcript): Bytes | undefined {
  if (t.k === undefined && t.prk !== undefined) {
    const two = alloc(1);
    two[0] = 2;
    const k = hmacWith(p, t.prk, concat(t.ck, two));
    wipe(t.prk);
    t.prk = undefined;
    t.k = slice(k, 0, 16);
    wipe(k);
  }
  return t.k;
}

function nonce(n: number): Bytes {
  const out = alloc(HS_NONCE);
  out[HS_NONCE - 1] = n & 0xff;
  return out;
}

/** Encrypts (or, with no key yet, copies) a field, authenticating the transcript so far; then hashes it. */
export function encryptAndHash(p: CryptoProvider, t: Transcript, plaintext: Bytes): Bytes {
  const k = cipherKey(p, t);
  if (k === undefined) {
    mixHash(p, t, plaintext);
    return plaintext;
  }
  const c = p.ccm(k, HS_TAG, HS_NONCE).seal(nonce(t.n), t.h, plaintext);
  t.n = t.n + 1;
  mixHash(p, t, c);
  return c;
}

/** The inverse of encryptAndHash; undefined when the tag does not verify. */
export function decryptAndHash(p: CryptoProvider, t: Transcript, sealed: Bytes): Bytes | undefined {
  const k = cipherKey(p, t);
  if (k === undefined) {
    mixHash(p, t, sealed);
    return sealed;
  }
  const m = p.ccm(k, HS_TAG, HS_NONCE).open(nonce(t.n), t.h, sealed);
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
  dropKeys(t);
  return km;
}
