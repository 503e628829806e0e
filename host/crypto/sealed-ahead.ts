// Records sealed ahead of their time, for a sender whose next records are predictable (the gateway's ACK
// of each reading: the next sequence number and the next message id): `count` of them in one batch on a
// key's reused contexts (ReusedCcm.sealBatch: a few native calls for all of them). The key's sealSeq then
// hands out the bytes made ahead for exactly (iv, seq, aad, plaintext) when they are among them, and seals
// afresh otherwise. A sequence number is sealed for one plaintext only: a record made ahead whose number
// was used for something else is never handed out, so no nonce ever carries two messages on the wire.
import type { ReusedCcm } from "./ccm";

export class SealedAhead {
  private iv: Uint8Array | undefined;
  private seq = 0;
  private count = 0;
  private aadLen = 0;
  private n = 0;
  private recs = new Uint8Array(0);
  private pts = new Uint8Array(0);

  /** Whether seq under iv is among the records made ahead. */
  holds(iv: Uint8Array, seq: number): boolean {
    return iv === this.iv && seq >= this.seq && seq - this.seq < this.count;
  }

  /**
   * Seals record e < count under the nonce iv XOR (seq + e), with aad aads[e * aadLen, (e + 1) * aadLen)
   * and plaintext pts[e * n, (e + 1) * n) (both copied), forgetting the previous batch.
   */
  seal(aead: ReusedCcm, iv: Uint8Array, seq: number, count: number, aads: Uint8Array, aadLen: number, pts: Uint8Array, n: number): void {
    const stride = aadLen + n + aead.tagLen;
    if (this.recs.length < count * stride) this.recs = new Uint8Array(count * stride);
    if (this.pts.length < count * n) this.pts = new Uint8Array(count * n);
    const recs = this.recs;
    for (let e = 0; e < count; e++) for (let j = 0; j < aadLen; j++) recs[e * stride + j] = aads[e * aadLen + j];
    for (let i = 0; i < count * n; i++) this.pts[i] = pts[i];
    this.iv = iv;
    this.seq = seq;
    this.count = count;
    this.aadLen = aadLen;
    this.n = n;
    aead.sealBatch(iv, seq, count, recs, stride, aadLen, this.pts, n);
  }

  /**
   * Writes the ciphertext and tag made ahead for exactly these inputs to out[at..]; false (nothing
   * written) when they are not among the records made ahead.
   */
  take(iv: Uint8Array, seq: number, aadBuf: Uint8Array, aadLen: number, pt: Uint8Array, out: Uint8Array, at: number, tagLen: number): boolean {
    const n = this.n;
    if (!this.holds(iv, seq) || aadLen !== this.aadLen || pt.length !== n) return false;
    const e = seq - this.seq;
    const rec = e * (aadLen + n + tagLen);
    for (let j = 0; j < aadLen; j++) if (this.recs[rec + j] !== aadBuf[j]) return false;
    for (let i = 0; i < n; i++) if (this.pts[e * n + i] !== pt[i]) return false;
    for (let j = 0; j < n + tagLen; j++) out[at + j] = this.recs[rec + aadLen + j];
    return true;
  }
}
