// The record AEADs on the host, over node:crypto (OpenSSL, AES-NI): the same Aead shape the portable core
// uses, so host and board seal byte-identical records.
import { createCipheriv, createDecipheriv, type CipherCCMTypes, type CipherGCMTypes } from "node:crypto";
import type { Aead } from "../../firmware/record/record";
import { ReusedCcm } from "./ccm";

// An empty plaintext still goes through update(), with bytes at a real address: OpenSSL's CCM reads an update
// whose input pointer is NULL as the final call, which then has no tag to give ("tag not set"), and an empty
// Uint8Array's pointer is NULL once V8 has moved it off the heap (it depends on what touched the array
// before). With a real address, the tag is RFC 3610's over the aad alone (test/host/crypto/ccm.test.ts).
const NO_BYTES = Buffer.alloc(16).subarray(0, 0);

/**
 * An OpenSSL AEAD (CCM or GCM: node:crypto takes the same calls for both, given the plaintext length), one
 * context per operation. (A class, not closures: every key of a large fleet may hold one.)
 */
class OpensslAead implements Aead {
  constructor(private readonly cipher: CipherCCMTypes | CipherGCMTypes, private readonly key: Uint8Array, readonly tagLen: number, readonly nonceLen: number) {}

  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
    // The CCM overloads are the stricter ones; GCM accepts the same calls.
    const c = createCipheriv(this.cipher as CipherCCMTypes, this.key, nonce, { authTagLength: this.tagLen });
    c.setAAD(aad, { plaintextLength: pt.length });
    const body = c.update(pt.length === 0 ? NO_BYTES : pt);
    c.final();
    return Buffer.concat([body, c.getAuthTag()]);
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
    if (sealed.length < this.tagLen) return undefined;
    const ctLen = sealed.length - this.tagLen;
    const d = createDecipheriv(this.cipher as CipherCCMTypes, this.key, nonce, { authTagLength: this.tagLen });
    d.setAuthTag(sealed.subarray(ctLen));
    d.setAAD(aad, { plaintextLength: ctLen });
    const pt = d.update(ctLen === 0 ? NO_BYTES : sealed.subarray(0, ctLen));
    try {
      d.final(); // OpenSSL compares the tag in constant time
    } catch {
      return undefined;
    }
    return pt;
  }
}

function checkCcmKey(key: Uint8Array): void {
  if (key.length !== 16) throw new RangeError(`AES-128-CCM needs a 16-byte key, got ${key.length}`);
}

/** AES-128-CCM (suite `constrained`) with the key bound in, one OpenSSL context per operation. */
export function oneShotCcm(key: Uint8Array, tagLen: number, nonceLen: number): Aead {
  checkCcmKey(key);
  return new OpensslAead("aes-128-ccm", key, tagLen, nonceLen);
}

/**
 * AES-128-CCM (suite `constrained`) with the key bound in: the host's record cipher, on two OpenSSL contexts
 * kept for the key (host/crypto/ccm.ts), the one-shot path for what those do not cover. Same bytes either way.
 */
export function nodeCcm(key: Uint8Array, tagLen: number, nonceLen: number): ReusedCcm {
  checkCcmKey(key);
  return new ReusedCcm(key, tagLen, nonceLen, () => oneShotCcm(key, tagLen, nonceLen));
}

/** AES-256-GCM (suite `backbone`) with the key bound in. */
export function nodeGcm(key: Uint8Array, tagLen = 16): Aead {
  if (key.length !== 32) throw new RangeError(`AES-256-GCM needs a 32-byte key, got ${key.length}`);
  return new OpensslAead("aes-256-gcm", key, tagLen, 12);
}
