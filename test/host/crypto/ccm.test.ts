import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { aesBlock, ccmOpen, ccmSeal } from "../../../firmware/crypto/ccm";
import { FORMAT_COMPACT } from "../../../firmware/record/header";
import { openRecord, sealRecord } from "../../../firmware/record/record";
import { nodeCcm, oneShotCcm } from "../../../host/crypto/aead";
import { ccmLiveCount, ccmStats, ReusedCcm, setCcmLiveMax } from "../../../host/crypto/ccm";

const hex = (b: Uint8Array | undefined) => (b === undefined ? "undefined" : Buffer.from(b).toString("hex"));

describe("AES-CCM on reused OpenSSL contexts (host/crypto/ccm.ts)", () => {
  it("seals the bytes of OpenSSL's one-shot CCM and of the portable CCM, and opens them, for every tag and nonce length", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4, 6, 8, 10, 12, 14, 16),
        fc.integer({ min: 7, max: 13 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 300 }),
        (tagLen, nonceLen, aad, pt) => {
          const key = randomBytes(16), nonce = randomBytes(nonceLen);
          const a = nodeCcm(key, tagLen, nonceLen);
          assert.ok(a instanceof ReusedCcm);
          const sealed = a.seal(nonce, aad, pt);
          assert.equal(hex(sealed), hex(ccmSeal(aesBlock(key), nonce, aad, pt, tagLen)));
          assert.equal(hex(sealed), hex(oneShotCcm(key, tagLen, nonceLen).seal(nonce, aad, pt)));
          assert.equal(hex(a.open(nonce, aad, sealed)), hex(pt));
          assert.equal(hex(ccmOpen(aesBlock(key), nonce, aad, sealed, tagLen)), hex(pt));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("rejects any flipped bit of nonce, aad, ciphertext or tag, and goes on giving right answers after", () => {
    const key = randomBytes(16);
    const a = nodeCcm(key, 8, 13);
    const ref = oneShotCcm(key, 8, 13);
    for (let n = 0; n < 300; n++) {
      const nonce = randomBytes(13), aad = randomBytes(8), pt = randomBytes(n % 70);
      const sealed = a.seal(nonce, aad, pt);
      const which = n % 4;
      const bad = [Buffer.from(nonce), Buffer.from(aad), Buffer.from(sealed)];
      const target = which === 3 ? bad[2] : bad[which];
      const at = which === 3 ? sealed.length - 1 - (n % 8) : (n * 7) % target.length;
      target[at] ^= 1 << (n % 8);
      assert.equal(a.open(bad[0], bad[1], bad[2]), undefined, `flip in part ${which}`);
      // The context's state survived the failure: the next operations still agree with the one-shot CCM.
      assert.equal(hex(a.open(nonce, aad, sealed)), hex(pt));
      assert.equal(hex(a.seal(nonce, aad, pt)), hex(ref.seal(nonce, aad, pt)));
    }
    assert.equal(a.open(randomBytes(13), randomBytes(8), randomBytes(7)), undefined); // shorter than the tag
  });

  it("keeps each key's contexts apart when operations on many keys interleave", () => {
    const keys = Array.from({ length: 20 }, () => randomBytes(16));
    const fast = keys.map((k) => nodeCcm(k, 8, 13));
    const ref = keys.map((k) => oneShotCcm(k, 8, 13));
    for (let n = 0; n < 2000; n++) {
      const i = (n * 7919) % keys.length;
      const nonce = randomBytes(13), aad = randomBytes(8), pt = randomBytes(1 + (n % 50));
      const s = fast[i].seal(nonce, aad, pt);
      assert.equal(hex(s), hex(ref[i].seal(nonce, aad, pt)));
      assert.equal(hex(fast[(i + 1) % keys.length].open(nonce, aad, s)), "undefined"); // another key
      assert.equal(hex(fast[i].open(nonce, aad, s)), hex(pt));
    }
  });

  it("bounds the keys holding contexts, and a key that lost its contexts still gives the same bytes", () => {
    const before = setCcmLiveMax(3);
    try {
      const keys = Array.from({ length: 10 }, () => randomBytes(16));
      const fast = keys.map((k) => nodeCcm(k, 8, 13));
      const ref = keys.map((k) => oneShotCcm(k, 8, 13));
      for (let n = 0; n < 500; n++) {
        const i = (n * 3 + (n >> 4)) % keys.length;
        const nonce = randomBytes(13), aad = randomBytes(8), pt = randomBytes(24);
        const s = fast[i].seal(nonce, aad, pt);
        assert.equal(hex(s), hex(ref[i].seal(nonce, aad, pt)));
        assert.equal(hex(fast[i].open(nonce, aad, s)), hex(pt));
        assert.ok(ccmLiveCount() <= 3);
      }
    } finally {
      setCcmLiveMax(before);
    }
  });

  it("when the keys in use outnumber the table, most of them take the one-shot path instead of making contexts each time", () => {
    const before = setCcmLiveMax(4);
    try {
      const keys = Array.from({ length: 64 }, () => randomBytes(16));
      const fast = keys.map((k) => nodeCcm(k, 8, 13));
      const ref = keys.map((k) => oneShotCcm(k, 8, 13));
      const s0 = ccmStats();
      const ops = 12_000;
      for (let n = 0; n < ops; n++) {
        const i = n % keys.length;
        const nonce = randomBytes(13), aad = randomBytes(8), pt = randomBytes(24);
        const s = fast[i].seal(nonce, aad, pt);
        assert.equal(hex(s), hex(ref[i].seal(nonce, aad, pt)));
        assert.equal(hex(fast[i].open(nonce, aad, s)), hex(pt));
      }
      const s1 = ccmStats();
      assert.ok(s1.bypassed - s0.bypassed > ops, JSON.stringify([s0, s1]));
      assert.ok(s1.made - s0.made < (2 * ops) / 4, JSON.stringify([s0, s1]));
    } finally {
      setCcmLiveMax(before);
    }
  });

  it("makes no contexts for a key used once (a handshake's, a junk hello's), and makes them from its second use on", () => {
    const a = nodeCcm(randomBytes(16), 8, 13);
    const nonce = randomBytes(13), aad = randomBytes(8), pt = randomBytes(24);
    const s0 = ccmStats();
    const sealed = a.seal(nonce, aad, pt);
    assert.equal(ccmStats().made, s0.made, "one operation: the one-shot path");
    assert.equal(a.holdsContexts, false);
    assert.equal(hex(a.open(nonce, aad, sealed)), hex(pt));
    assert.equal(ccmStats().made, s0.made + 1);
    assert.equal(a.holdsContexts, true);
  });

  it("falls back to the one-shot path for what it does not cover, with the same results", () => {
    const key = randomBytes(16);
    const a = nodeCcm(key, 8, 13);
    const nonce = randomBytes(13);
    const empty = new Uint8Array(0);
    const tagOnly = a.seal(nonce, empty, empty); // nothing to authenticate: no contexts, OpenSSL's one-shot tag
    assert.equal(hex(tagOnly), hex(ccmSeal(aesBlock(key), nonce, empty, empty, 8)));
    assert.equal(hex(a.open(nonce, empty, tagOnly)), "");
    const bigAad = randomBytes(0xff00), pt = randomBytes(10);
    const s = a.seal(nonce, bigAad, pt);
    assert.equal(hex(s), hex(oneShotCcm(key, 8, 13).seal(nonce, bigAad, pt)));
    assert.equal(hex(a.open(nonce, bigAad, s)), hex(pt));
  });

  it("makes OpenSSL's one-shot tag over an empty plaintext the portable CCM's, and refuses it altered", () => {
    fc.assert(
      fc.property(fc.constantFrom(4, 8, 16), fc.integer({ min: 7, max: 13 }), fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 15 }), (tagLen, nonceLen, aad, flip) => {
        const key = randomBytes(16), nonce = randomBytes(nonceLen), empty = new Uint8Array(0);
        const a = oneShotCcm(key, tagLen, nonceLen);
        const tag = a.seal(nonce, aad, empty);
        assert.equal(hex(tag), hex(ccmSeal(aesBlock(key), nonce, aad, empty, tagLen)));
        assert.equal(hex(a.open(nonce, aad, tag)), "");
        const forged = Uint8Array.from(tag);
        forged[flip % tagLen] ^= 1;
        assert.equal(a.open(nonce, aad, forged), undefined);
      }),
      { numRuns: 200 },
    );
  });

  it("seals a batch of messages in a few calls, each one the bytes of sealing it alone", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 0xfffff }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 20 }),
        fc.constantFrom(8, 13),
        (count, seq, n, aadLen, nonceLen) => {
          if (aadLen + n === 0) return;
          const key = randomBytes(16), iv = randomBytes(nonceLen);
          const a = nodeCcm(key, 8, nonceLen);
          const stride = aadLen + n + 8;
          const recs = new Uint8Array(count * stride);
          const pts = randomBytes(count * n);
          for (let e = 0; e < count; e++) recs.set(randomBytes(aadLen), e * stride);
          a.sealBatch(iv, seq, count, recs, stride, aadLen, pts, n);
          const ref = oneShotCcm(key, 8, nonceLen);
          for (let e = 0; e < count; e++) {
            const nonce = Buffer.from(iv);
            nonce.writeUInt32BE((nonce.readUInt32BE(nonceLen - 4) ^ (seq + e)) >>> 0, nonceLen - 4);
            const aad = recs.subarray(e * stride, e * stride + aadLen);
            const want = ref.seal(nonce, aad, pts.subarray(e * n, (e + 1) * n));
            assert.equal(hex(recs.subarray(e * stride + aadLen, (e + 1) * stride)), hex(want), `message ${e} of ${count}`);
          }
          // The batch left the key's other state alone: single operations still agree.
          const nonce = randomBytes(nonceLen), aad = randomBytes(8), pt = randomBytes(24);
          assert.equal(hex(a.seal(nonce, aad, pt)), hex(ref.seal(nonce, aad, pt)));
        },
      ),
      { numRuns: 400 },
    );
  });

  it("seals and opens compact records in place through the record layer's host hooks (sealSeq, openSeq): the portable path's bytes, in and out of sequence order, and no forgery opens", () => {
    const key = randomBytes(16), iv = randomBytes(13);
    const sealer = nodeCcm(key, 8, 13), opener = nodeCcm(key, 8, 13), portable = oneShotCcm(key, 8, 13); // the last one has no hooks
    let seq = 0;
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 120 }),
        fc.integer({ min: 1, max: 0xffffff }),
        fc.constantFrom(0, 0x40, 0x20),
        fc.integer({ min: 0, max: 40 }),
        (payload, spi, flags, jump) => {
          // Mostly the next number (the counter blocks computed ahead are used), sometimes a jump back or ahead.
          seq = jump < 30 ? seq + 1 : jump < 35 ? Math.max(0, seq - jump) : seq + jump * 1000;
          seq = seq & 0xfffff;
          const a = sealRecord(FORMAT_COMPACT, sealer, iv, spi, flags, 0, seq, payload) as Uint8Array;
          assert.equal(hex(a), hex(sealRecord(FORMAT_COMPACT, portable, iv, spi, flags, 0, seq, payload) as Uint8Array));
          const o = openRecord(FORMAT_COMPACT, opener, iv, a);
          assert.ok(typeof o !== "number");
          assert.equal(hex(o.payload), hex(payload));
          const bad = Uint8Array.from(a);
          bad[(jump * 7) % bad.length] ^= 1 << (jump % 8);
          assert.equal(typeof openRecord(FORMAT_COMPACT, opener, iv, bad), "number");
          assert.equal(typeof openRecord(FORMAT_COMPACT, opener, iv, a.subarray(0, a.length - 1)), "number");
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("hands out a record sealed ahead only for exactly its inputs; anything else is sealed afresh", () => {
    const key = randomBytes(16), iv = randomBytes(13), spi = 0x123456;
    const a = nodeCcm(key, 8, 13), ref = oneShotCcm(key, 8, 13);
    a.seal(randomBytes(13), randomBytes(8), randomBytes(4)); // its second use makes contexts
    a.seal(randomBytes(13), randomBytes(8), randomBytes(4));
    const headers = new Uint8Array(8 * 16), payloads = randomBytes(4 * 16);
    const header = (seq: number) => {
      const r = sealRecord(FORMAT_COMPACT, ref, iv, spi, 0x40, 0, seq, new Uint8Array(4)) as Uint8Array;
      return r.subarray(0, 8);
    };
    for (let e = 0; e < 16; e++) headers.set(header(1000 + e), 8 * e);
    assert.ok(a.sealAhead(iv, 1000, 16, headers, 8, payloads, 4));
    for (let e = 0; e < 16; e++) {
      const p = payloads.subarray(e * 4, e * 4 + 4);
      assert.ok(a.sealedAhead(iv, 1000 + e));
      // The same inputs: the bytes made ahead, which are what sealing now gives.
      assert.equal(hex(sealRecord(FORMAT_COMPACT, a, iv, spi, 0x40, 0, 1000 + e, p) as Uint8Array), hex(sealRecord(FORMAT_COMPACT, ref, iv, spi, 0x40, 0, 1000 + e, p) as Uint8Array));
      // Other inputs under a number sealed ahead: sealed afresh, never the bytes made ahead.
      const wrong = Uint8Array.from(p);
      wrong[3] ^= 1;
      for (const [f, q] of [[0x40, wrong], [0, p]] as const) {
        assert.equal(hex(sealRecord(FORMAT_COMPACT, a, iv, spi, f, 0, 1000 + e, q) as Uint8Array), hex(sealRecord(FORMAT_COMPACT, ref, iv, spi, f, 0, 1000 + e, q) as Uint8Array));
      }
      assert.equal(hex(sealRecord(FORMAT_COMPACT, a, Uint8Array.from(iv), spi, 0x40, 0, 1000 + e, p) as Uint8Array), hex(sealRecord(FORMAT_COMPACT, ref, Uint8Array.from(iv), spi, 0x40, 0, 1000 + e, p) as Uint8Array));
    }
    assert.equal(a.sealedAhead(iv, 999), false);
    assert.equal(a.sealedAhead(iv, 1016), false);
  });
});
