// The record AEADs on the host, over node:crypto (OpenSSL, AES-NI): the same Aead shape the portable core
// uses, so host and board seal byte-identical records.
import { createCipheriv, createDecipheriv, type CipherCCMTypes, type CipherGCMTypes } from "node:crypto";
import type { Aead } from "../../firmware/record/record";
import { aesBlock } from "../../firmware/crypto/ccm";
import { ccmAead } from "../../firmware/crypto/provider";
import { ReusedCcm } from "./ccm";

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
    const body = c.update(pt);
    c.final();
    return Buffer.concat([body, c.getAuthTag()]);
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
    if (sealed.length < this.tagLen) return undefined;
    const ctLen = sealed.length - this.tagLen;
    const d = createDecipheriv(this.cipher as CipherCCMTypes, this.key, nonce, { authTagLength: this.tagLen });
    d.setAuthTag(sealed.subarray(ctLen));
    d.setAAD(aad, { plaintextLength: ctLen });
    const pt = d.update(sealed.subarray(0, ctLen));
    try {
      d.final(); // OpenSSL compares the tag in constant time
    } catch {
      return undefined;
    }
    return pt;
  }
}

/**
 * AES-128-CCM (suite `constrained`) with the key bound in, one OpenSSL context per operation. Through
 * node:crypto, OpenSSL makes no CCM tag for an empty plaintext ("tag not set", whatever the aad); sesame
 * never seals one (every record carries a message), but so that the function is total that case goes to
 * the portable CCM, which gives the same bytes.
 */
class OneShotCcm extends OpensslAead {
  private portable: Aead | undefined;

  constructor(private readonly ccmKey: Uint8Array, tagLen: number, nonceLen: number) {
    super("aes-128-ccm", ccmKey, tagLen, nonceLen);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
    return pt.length === 0 ? this.empty().seal(nonce, aad, pt) : super.seal(nonce, aad, pt);
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
    return sealed.length === this.tagLen ? this.empty().open(nonce, aad, sealed) : super.open(nonce, aad, sealed);
  }

  private empty(): Aead {
    return (this.portable ??= ccmAead(aesBlock(this.ccmKey), this.tagLen, this.nonceLen));
  }
}

function checkCcmKey(key: Uint8Array): void {
  if (key.length !== 16) throw new RangeError(`AES-128-CCM needs a 16-byte key, got ${key.length}`);
}

/** AES-128-CCM (suite `constrained`) with the key bound in, one OpenSSL context per operation. */
export function oneShotCcm(key: Uint8Array, tagLen: number, nonceLen: number): Aead {
  checkCcmKey(key);
  return new OneShotCcm(key, tagLen, nonceLen);
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
