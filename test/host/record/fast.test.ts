import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { openRecord, sealRecord } from "../../../firmware/record/record";
import { FORMAT_COMPACT, FORMAT_EXTREME, FORMAT_LARGE } from "../../../firmware/record/header";
import { nodeCcm, nodeGcm } from "../../../host/crypto/aead";
import { HOST_CCM8, HOST_GCM16, openCompact, openFast, sealCompact, SealedAhead, sealFast } from "../../../host/record/fast";

describe("host fast record path", () => {
  const cases = [
    { name: "compact / AES-128-CCM-8", format: FORMAT_COMPACT, suite: HOST_CCM8, key: randomBytes(16), iv: randomBytes(13), maxSpi: 0xffffff, maxSeq: 0xfffff },
    { name: "large / AES-256-GCM", format: FORMAT_LARGE, suite: HOST_GCM16, key: randomBytes(32), iv: randomBytes(12), maxSpi: 0xffffffff, maxSeq: 0xffffffff },
    { name: "extreme / AES-256-GCM", format: FORMAT_EXTREME, suite: HOST_GCM16, key: randomBytes(32), iv: randomBytes(12), maxSpi: 0xffffffff, maxSeq: 0xffffffff },
  ];
  for (const c of cases) {
    it(`gives the firmware's bytes: ${c.name}`, () => {
      const aead = c.suite === HOST_CCM8 ? nodeCcm(c.key, 8, 13) : nodeGcm(c.key);
      const k = { suite: c.suite, format: c.format, key: c.key, iv: c.iv };
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 200 }),
          fc.integer({ min: 1, max: c.maxSpi }),
          fc.constantFrom(0, 0x40, 0x80, 0x20),
          fc.integer({ min: 0, max: c.format === FORMAT_EXTREME ? 0xffffffff : 0 }),
          fc.integer({ min: 0, max: c.maxSeq }),
          (payload, spi, flags, seqHi, seq) => {
            const a = sealFast(k, spi, flags, seqHi, seq, payload);
            const b = sealRecord(c.format, aead, c.iv, spi, flags, seqHi, seq, payload) as Uint8Array;
            assert.deepEqual(a, Buffer.from(b));
            const o = openFast(k, a)!;
            assert.deepEqual([o.spi, o.flags, o.seqHi, o.seq], [spi, flags, seqHi, seq]);
            assert.deepEqual(o.payload, Buffer.from(payload));
            const p = openRecord(c.format, aead, c.iv, a);
            assert.ok(typeof p !== "number");
            a[a.length - 1] ^= 1;
            assert.equal(openFast(k, a), undefined);
          },
        ),
        { numRuns: 500 },
      );
    });
  }
  it("drops random bytes without throwing", () => {
    const k = { suite: HOST_CCM8, format: FORMAT_COMPACT, key: randomBytes(16), iv: randomBytes(13) };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => assert.equal(openFast(k, Buffer.from(b)), undefined)), { numRuns: 3000 });
  });
  it("compact records on reused CCM contexts: the firmware's bytes, in and out of sequence order, and no forgery opens", () => {
    const key = randomBytes(16), iv = randomBytes(13);
    const sealer = nodeCcm(key, 8, 13), opener = nodeCcm(key, 8, 13), ref = nodeCcm(key, 8, 13);
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
          const a = sealCompact(sealer, iv, spi, flags, seq, payload);
          const b = sealRecord(FORMAT_COMPACT, ref, iv, spi, flags, 0, seq, payload) as Uint8Array;
          assert.deepEqual(Buffer.from(a), Buffer.from(b));
          assert.deepEqual(Buffer.from(openCompact(opener, iv, a)!), Buffer.from(payload));
          const bad = Uint8Array.from(a);
          bad[(jump * 7) % bad.length] ^= 1 << (jump % 8);
          assert.equal(openCompact(opener, iv, bad), undefined);
          assert.equal(openCompact(opener, iv, a.subarray(0, a.length - 1)), undefined);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("records sealed ahead are handed out only for exactly their inputs, as sealCompact makes them", () => {
    const key = randomBytes(16), iv = randomBytes(13);
    const a = nodeCcm(key, 8, 13), other = nodeCcm(randomBytes(16), 8, 13), ref = nodeCcm(key, 8, 13);
    const payloads = randomBytes(16 * 4);
    const ahead = new SealedAhead();
    ahead.seal(a, iv, 0x123456, 0x40, 900, 16, 4, randomBytes(64)); // an earlier batch, replaced by the next
    ahead.seal(a, iv, 0x123456, 0x40, 1000, 16, 4, payloads);
    for (let e = 0; e < 16; e++) {
      const p = payloads.subarray(e * 4, e * 4 + 4);
      assert.deepEqual(Buffer.from(ahead.take(a, iv, 0x123456, 0x40, 1000 + e, p)!), Buffer.from(sealCompact(ref, iv, 0x123456, 0x40, 1000 + e, p)));
      const wrong = Uint8Array.from(p);
      wrong[3] ^= 1;
      assert.equal(ahead.take(a, iv, 0x123456, 0x40, 1000 + e, wrong), undefined);
      assert.equal(ahead.take(a, iv, 0x123456, 0x40, 1001 + e + (e === 15 ? 0 : 16), p), undefined);
      assert.equal(ahead.take(a, iv, 0x123457, 0x40, 1000 + e, p), undefined);
      assert.equal(ahead.take(a, iv, 0x123456, 0, 1000 + e, p), undefined);
      assert.equal(ahead.take(other, iv, 0x123456, 0x40, 1000 + e, p), undefined);
      assert.equal(ahead.take(a, Uint8Array.from(iv), 0x123456, 0x40, 1000 + e, p), undefined);
    }
    assert.equal(ahead.take(a, iv, 0x123456, 0x40, 999, payloads.subarray(0, 4)), undefined);
    assert.equal(ahead.take(a, iv, 0x123456, 0x40, 905, payloads.subarray(0, 4)), undefined);
    // A record handed out is the taker's own: the next batch does not change it.
    const kept = ahead.take(a, iv, 0x123456, 0x40, 1000, payloads.subarray(0, 4))!;
    const copy = Buffer.from(kept);
    ahead.seal(a, iv, 0x123456, 0x40, 2000, 16, 4, randomBytes(64));
    assert.deepEqual(Buffer.from(kept), copy);
  });
});
