// The record AEADs on the host, over node:crypto (OpenSSL, AES-NI): the same Aead shape the portable core
// uses, so host and board seal byte-identical records.
import { createCipheriv, createDecipheriv, type CipherCCMTypes, type CipherGCMTypes } from "node:crypto";
import type { Aead } from "../../firmware/record/record";
import { aesBlock } from "../../firmware/crypto/ccm";
import { ccmAead } from "../../firmware/crypto/provider";

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
 * AES-128-CCM (suite `constrained`) with the key bound in. OpenSSL cannot make a CCM tag over nothing at
 * all (empty aad and empty plaintext: "tag not set"); sesame never asks for one (a record's header is its
 * aad), but so that the function is total that case goes to the portable CCM, which gives the same bytes.
 */
export function nodeCcm(key: Uint8Array, tagLen: number, nonceLen: number): Aead {
  if (key.length !== 16) throw new RangeError(`AES-128-CCM needs a 16-byte key, got ${key.length}`);
  const openssl = opensslAead("aes-128-ccm", key, tagLen, nonceLen);
  const portable = ccmAead(aesBlock(key), tagLen, nonceLen);
  const empty = (aad: Uint8Array, n: number) => aad.length === 0 && n === 0;
  return {
    tagLen,
    nonceLen,
    seal: (nonce, aad, pt) => (empty(aad, pt.length) ? portable : openssl).seal(nonce, aad, pt),
    open: (nonce, aad, sealed) => (empty(aad, sealed.length - tagLen) ? portable : openssl).open(nonce, aad, sealed),
  };
}

/** AES-256-GCM (suite `backbone`) with the key bound in. */
export function nodeGcm(key: Uint8Array, tagLen = 16): Aead {
  if (key.length !== 32) throw new RangeError(`AES-256-GCM needs a 32-byte key, got ${key.length}`);
  return opensslAead("aes-256-gcm", key, tagLen, 12);
}
