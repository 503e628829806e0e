import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { openRecord, sealRecord } from "../../../firmware/record/record";
import { FORMAT_COMPACT, FORMAT_EXTREME, FORMAT_LARGE } from "../../../firmware/record/header";
import { nodeCcm, nodeGcm } from "../../../host/crypto/aead";
import { HOST_CCM8, HOST_GCM16, openFast, sealFast } from "../../../host/record/fast";

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
});
