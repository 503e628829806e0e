// The record AEADs on the host, over node:crypto (OpenSSL, AES-NI): the same Aead shape the portable core
// uses, so host and board seal byte-identical records.
import { createCipheriv, createDecipheriv } from "node:crypto";
import type { Aead } from "../../firmware/record/record";

/** AES-128-CCM (suite `constrained`) with the key bound in. */
export function nodeCcm(key: Uint8Array, tagLen: number, nonceLen: number): Aead {
  if (key.length !== 16) throw new RangeError(`AES-128-CCM needs a 16-byte key, got ${key.length}`);
  return {
    tagLen,
    nonceLen,
    seal(nonce, aad, pt) {
      const c = createCipheriv("aes-128-ccm", key, nonce, { authTagLength: tagLen });
      c.setAAD(aad, { plaintextLength: pt.length });
      const body = c.update(pt);
      c.final();
      return Buffer.concat([body, c.getAuthTag()]);
    },
    open(nonce, aad, sealed) {
      if (sealed.length < tagLen) return undefined;
      const ctLen = sealed.length - tagLen;
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
