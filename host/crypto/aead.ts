// The record AEADs on the host, over node:crypto (OpenSSL, AES-NI): the same Aead shape the portable core
// uses, so host and board seal byte-identical records.
import { createCipheriv, createDecipheriv } from "node:crypto";
import type { Aead } from "../../firmware/record/record";
import { aesBlock } from "../../firmware/crypto/ccm";
import { ccmAead } from "../../firmware/crypto/provider";

/**
 * AES-128-CCM (suite `constrained`) with the key bound in. OpenSSL cannot make a CCM tag over nothing at
 * all (empty aad and empty plaintext: "tag not set"); sesame never asks for one (a record's header is its
 * aad), but so that the function is total that case goes to the portable CCM, which gives the same bytes.
 */
export function nodeCcm(key: Uint8Array, tagLen: number, nonceLen: number): Aead {
  if (key.length !== 16) throw new RangeError(`AES-128-CCM needs a 16-byte key, got ${key.length}`);
  const portable = ccmAead(aesBlock(key), tagLen, nonceLen);
  return {
    tagLen,
    nonceLen,
    seal(nonce, aad, pt) {
      if (aad.length === 0 && pt.length === 0) return portable.seal(nonce, aad, pt);
      const c = createCipheriv("aes-128-ccm", key, nonce, { authTagLength: tagLen });
      c.setAAD(aad, { plaintextLength: pt.length });
      const body = c.update(pt);
      c.final();
      return Buffer.concat([body, c.getAuthTag()]);
    },
    open(nonce, aad, sealed) {
      if (sealed.length < tagLen) return undefined;
      const ctLen = sealed.length - tagLen;
      if (aad.length === 0 && ctLen === 0) return portable.open(nonce, aad, sealed);
      const d = createDecipheriv("aes-128-ccm", key, nonce, { authTagLength: tagLen });
      d.setAuthTag(sealed.subarray(ctLen));
      d.setAAD(aad, { plaintextLength: ctLen });
      const pt = d.update(sealed.subarray(0, ctLen));
      try {
        d.final(); // OpenSSL compares the tag in constant time; CCM's update() already withholds on failure
      } catch {
        return undefined;
      }
      return pt;
    },
  };
}

/** AES-256-GCM (suite `backbone`) with the key bound in. */
export function nodeGcm(key: Uint8Array, tagLen = 16): Aead {
  if (key.length !== 32) throw new RangeError(`AES-256-GCM needs a 32-byte key, got ${key.length}`);
  return {
    tagLen,
    nonceLen: 12,
    seal(nonce, aad, pt) {
      const c = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: tagLen });
      c.setAAD(aad);
      const body = c.update(pt);
      c.final();
      return Buffer.concat([body, c.getAuthTag()]);
    },
    open(nonce, aad, sealed) {
      if (sealed.length < tagLen) return undefined;
      const ctLen = sealed.length - tagLen;
      const d = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: tagLen });
      d.setAuthTag(sealed.subarray(ctLen));
      d.setAAD(aad);
      const pt = d.update(sealed.subarray(0, ctLen));
      try {
        d.final();
      } catch {
        return undefined;
      }
      return pt;
    },
  };
}
