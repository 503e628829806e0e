// The record AEADs on the host, over node:crypto (OpenSSL, AES-NI): the same Aead shape the portable core
// uses, so host and board seal byte-identical records.
import { createCipheriv, createDecipheriv, type CipherCCMTypes, type CipherGCMTypes } from "node:crypto";
import type { Aead } from "../../firmware/record/record";
import { aesBlock } from "../../firmware/crypto/ccm";
import { ccmAead } from "../../firmware/crypto/provider";
import { ReusedCcm } from "./ccm";

/** An OpenSSL AEAD (CCM or GCM: node:crypto takes the same calls for both, given the plaintext length). */
function opensslAead(cipher: CipherCCMTypes | CipherGCMTypes, key: Uint8Array, tagLen: number, nonceLen: number): Aead {
  const name = cipher as CipherCCMTypes; // the CCM overloads are the stricter ones; GCM accepts the same calls
  return {
    tagLen,
    nonceLen,
    seal(nonce, aad, pt) {
      const c = createCipheriv(name, key, nonce, { authTagLength: tagLen });
      c.setAAD(aad, { plaintextLength: pt.length });
      const body = c.update(pt);
      c.final();
      return Buffer.concat([body, c.getAuthTag()]);
    },
    open(nonce, aad, sealed) {
      if (sealed.length < tagLen) return undefined;
      const ctLen = sealed.length - tagLen;
      const d = createDecipheriv(name, key, nonce, { authTagLength: tagLen });
      d.setAuthTag(sealed.subarray(ctLen));
      d.setAAD(aad, { plaintextLength: ctLen });
      const pt = d.update(sealed.subarray(0, ctLen));
      try {
        d.final(); // OpenSSL compares the tag in constant time
      } catch {
        return undefined;
      }
      return pt;
    },
  };
}

/**
 * AES-128-CCM (suite `constrained`) with the key bound in, one OpenSSL context per operation. Through
 * node:crypto, OpenSSL makes no CCM tag for an empty plaintext ("tag not set", whatever the aad); sesame
 * never seals one (every record carries a message), but so that the function is total that case goes to
 * the portable CCM, which gives the same bytes.
 */
export function oneShotCcm(key: Uint8Array, tagLen: number, nonceLen: number): Aead {
  if (key.length !== 16) throw new RangeError(`AES-128-CCM needs a 16-byte key, got ${key.length}`);
  const openssl = opensslAead("aes-128-ccm", key, tagLen, nonceLen);
  let portable: Aead | undefined;
  const pick = (n: number) => (n === 0 ? (portable ??= ccmAead(aesBlock(key), tagLen, nonceLen)) : openssl);
  return {
    tagLen,
    nonceLen,
    seal: (nonce, aad, pt) => pick(pt.length).seal(nonce, aad, pt),
    open: (nonce, aad, sealed) => pick(sealed.length - tagLen).open(nonce, aad, sealed),
  };
}

/**
 * AES-128-CCM (suite `constrained`) with the key bound in: the host's record cipher, on two OpenSSL contexts
 * kept for the key (host/crypto/ccm.ts), the one-shot path for what those do not cover. Same bytes either way.
 */
export function nodeCcm(key: Uint8Array, tagLen: number, nonceLen: number): ReusedCcm {
  return new ReusedCcm(key, tagLen, nonceLen, oneShotCcm(key, tagLen, nonceLen));
}

/** AES-256-GCM (suite `backbone`) with the key bound in. */
export function nodeGcm(key: Uint8Array, tagLen = 16): Aead {
  if (key.length !== 32) throw new RangeError(`AES-256-GCM needs a 32-byte key, got ${key.length}`);
  return opensslAead("aes-256-gcm", key, tagLen, 12);
}
