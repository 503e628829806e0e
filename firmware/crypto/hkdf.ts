// HKDF (RFC 5869): extract-then-expand over HMAC with any one-shot hash.
import { alloc, Bytes } from "#target";
import { copyInto, wipe } from "../bytes";
import { Hash, hmac } from "./hmac";
import { sha256, SHA256_BLOCK, SHA256_SIZE } from "./sha256";

/** PRK = HMAC-Hash(salt, IKM). The caller supplies the RFC's default salt (HashLen zeros) if it has none. */
export function hkdfExtract(hash: Hash, blockSize: number, salt: Bytes, ikm: Bytes): Bytes {
  return hmac(hash, blockSize, salt, ikm);
}

/** T(i) = HMAC-Hash(PRK, T(i-1) | info | i), the block input of the expand step. */
function expandInput(previous: Bytes, info: Bytes, counter: number): Bytes {
  const out = alloc(previous.length + info.length + 1);
  copyInto(out, 0, previous, previous.length);
  copyInto(out, previous.length, info, info.length);
  out[out.length - 1] = counter & 0xff;
  return out;
}

/**
 * OKM = the first `length` bytes of T(1) | T(2) | ...; throws a string unless 0 <= length <= 255 * HashLen
 * (the counter is one byte).
 */
export function hkdfExpand(hash: Hash, blockSize: number, prk: Bytes, info: Bytes, length: number): Bytes {
  if (!(length >= 0)) throw "hkdf: negative output length";
  if (length === 0) return alloc(0);
  // HashLen is only known once the hash has run: check the limit on T(1), before allocating the output.
  let input = expandInput(alloc(0), info, 1);
  let t = hmac(hash, blockSize, prk, input);
  wipe(input);
  if (length > 255 * t.length) {
    wipe(t);
    throw "hkdf: output longer than 255 hash blocks";
  }
  const okm = alloc(length);
  let pos = 0;
  for (let i = 2; ; i++) {
    const n = length - pos < t.length ? length - pos : t.length;
    copyInto(okm, pos, t, n);
    pos += n;
    if (pos >= length) break;
    input = expandInput(t, info, i);
    wipe(t);
    t = hmac(hash, blockSize, prk, input);
    wipe(input);
  }
  wipe(t);
  return okm;
}

/** HKDF-SHA-256 in one call; an empty salt means 32 zero bytes, as RFC 5869 2.2 says. */
export function hkdfSha256(ikm: Bytes, salt: Bytes, info: Bytes, length: number): Bytes {
  // (HMAC pads its key with zeros anyway, so the two are the same MAC; this keeps the RFC's wording.)
  const s = salt.length === 0 ? alloc(SHA256_SIZE) : salt;
  const prk = hkdfExtract(sha256, SHA256_BLOCK, s, ikm);
  const okm = hkdfExpand(sha256, SHA256_BLOCK, prk, info, length);
  wipe(prk);
  return okm;
}
