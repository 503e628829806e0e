import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import {
  FORMAT_COMPACT,
  FORMAT_EXTREME,
  FORMAT_LARGE,
  HEADER_SIZE,
  Header,
  readHeader,
  REJECT_AUTH,
  REJECT_FORMAT,
  writeHeader,
  checkHeader,
} from "../../../firmware/record/header";
import { openRecord, parseRecord, recordSize, sealRecord } from "../../../firmware/record/record";
import { ccmAead } from "../../../firmware/crypto/provider";
import { aesBlock } from "../../../firmware/crypto/ccm";
import { nodeCcm, nodeGcm } from "../../../host/crypto/aead";
import { SUITE_BACKBONE, SUITE_CONSTRAINED } from "../../../firmware/suite";

const U32 = 0xffffffff;
const limits = [
  { spi: 0xffffff, length: 0xfff, seqHi: 0, seq: 0xfffff },
  { spi: U32, length: U32, seqHi: 0, seq: U32 },
  { spi: U32, length: U32, seqHi: U32, seq: U32 },
];
const flagsArb = fc.constantFrom(0, 0x80, 0x40, 0x20, 0x10, 0xf0, 0xc0);

function headerArb(format: number): fc.Arbitrary<Header> {
  const l = limits[format];
  return fc.record({
    spi: fc.integer({ min: 0, max: l.spi }),
    flags: flagsArb,
    length: fc.integer({ min: 0, max: l.length }),
    seqHi: fc.integer({ min: 0, max: l.seqHi }),
    seq: fc.integer({ min: 0, max: l.seq }),
  });
}

const key = randomBytes(16);
const iv = randomBytes(13);
const portable = ccmAead(aesBlock(key), 8, 13);

describe("record header", () => {
  for (const format of [FORMAT_COMPACT, FORMAT_LARGE, FORMAT_EXTREME]) {
    it(`round-trips format ${format} at the field limits and at random`, () => {
      const max: Header = { ...limits[format], flags: 0xf0 };
      const zero: Header = { spi: 0, flags: 0, length: 0, seqHi: 0, seq: 0 };
      for (const h of [max, zero]) {
        const b = new Uint8Array(HEADER_SIZE[format]);
        assert.equal(checkHeader(format, h), 0);
        writeHeader(format, h, b, 0);
        assert.deepEqual(readHeader(format, b, 0), h);
      }
      fc.assert(
        fc.property(headerArb(format), (h) => {
          const b = new Uint8Array(HEADER_SIZE[format] + 3);
          writeHeader(format, h, b, 3);
          assert.deepEqual(readHeader(format, b, 3), { ...h });
        }),
        { numRuns: 2000 },
      );
    });
  }

  it("gives a typed rejection, never an exception, for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: -1, max: 3 }), (b, format) => {
        const h = readHeader(format, b, 0);
        if (format < 0 || format > 2) assert.equal(h, REJECT_FORMAT);
        const r = parseRecord(format, 8, b);
        assert.ok(typeof r === "number" || typeof r.spi === "number");
        const o = openRecord(format, portable, iv, b);
        assert.ok(typeof o === "number", "random bytes never authenticate");
        assert.equal(typeof recordSize(format, 8, b, 0), "number");
      }),
      { numRuns: 3000 },
    );
  });
});

describe("record sealing (suite constrained, compact format)", () => {
  it("seals byte-identically with the portable and the node:crypto AEAD, and each opens the other's", () => {
    const host = nodeCcm(key, 8, 13);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), headerArb(FORMAT_COMPACT), (payload, h) => {
        const spi = h.spi || 1;
        const a = sealRecord(FORMAT_COMPACT, portable, iv, spi, h.flags, 0, h.seq, payload);
        const b = sealRecord(FORMAT_COMPACT, host, iv, spi, h.flags, 0, h.seq, payload);
        assert.ok(typeof a !== "number" && typeof b !== "number");
        assert.deepEqual(Buffer.from(a), Buffer.from(b));
        assert.equal(a.length, 8 + payload.length + SUITE_CONSTRAINED.tagLen, "16 bytes of overhead");
        const o = openRecord(FORMAT_COMPACT, host, iv, a);
        assert.ok(typeof o !== "number");
        assert.deepEqual(Buffer.from(o.payload), Buffer.from(payload));
      }),
      { numRuns: 1000 },
    );
  });

  it("rejects every single-bit flip of a sealed record", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 48 }), fc.nat(), (payload, pick) => {
        const rec = sealRecord(FORMAT_COMPACT, portable, iv, 0x42, 0x40, 0, 7, payload) as Uint8Array;
        const bit = pick % (rec.length * 8);
        const bad = Uint8Array.from(rec);
        bad[bit >> 3] ^= 1 << (bit & 7);
        const r = openRecord(FORMAT_COMPACT, portable, iv, bad);
        assert.equal(typeof r, "number", `bit ${bit} of ${rec.length * 8} went unnoticed`);
      }),
      { numRuns: 3000 },
    );
    // Exhaustively for one record: each flip fails, and a flip in the body or tag fails as REJECT_AUTH.
    const rec = sealRecord(FORMAT_COMPACT, portable, iv, 0x42, 0, 0, 7, Uint8Array.from([1, 2, 3])) as Uint8Array;
    for (let bit = 0; bit < rec.length * 8; bit++) {
      const bad = Uint8Array.from(rec);
      bad[bit >> 3] ^= 1 << (bit & 7);
      const r = openRecord(FORMAT_COMPACT, portable, iv, bad);
      assert.equal(typeof r, "number");
      if (bit >= 64) assert.equal(r, REJECT_AUTH);
    }
  });
});

describe("record sealing (suite backbone, extreme format)", () => {
  it("round-trips AES-256-GCM records up to sequence 2^64-1 and rejects flips", () => {
    const gcm = nodeGcm(randomBytes(32));
    const giv = randomBytes(12);
    for (const [seqHi, seq] of [[0, 0], [0, U32], [1, 0], [U32, U32]]) {
      const payload = randomBytes(100);
      const rec = sealRecord(FORMAT_EXTREME, gcm, giv, 0xdeadbeef, 0x10, seqHi, seq, payload) as Uint8Array;
      assert.equal(rec.length, 17 + 100 + SUITE_BACKBONE.tagLen);
      const o = openRecord(FORMAT_EXTREME, gcm, giv, rec);
      assert.ok(typeof o !== "number");
      assert.deepEqual([o.header.seqHi, o.header.seq], [seqHi, seq]);
      assert.deepEqual(Buffer.from(o.payload), payload);
      rec[20] ^= 0x80;
      assert.equal(openRecord(FORMAT_EXTREME, gcm, giv, rec), REJECT_AUTH);
    }
  });

  it("gives distinct nonces for sequence numbers that differ only in the high half", () => {
    const gcm = nodeGcm(randomBytes(32));
    const giv = new Uint8Array(12);
    const a = sealRecord(FORMAT_EXTREME, gcm, giv, 5, 0, 1, 0, new Uint8Array(16)) as Uint8Array;
    const b = sealRecord(FORMAT_EXTREME, gcm, giv, 5, 0, 0, 0, new Uint8Array(16)) as Uint8Array;
    assert.notDeepEqual(Buffer.from(a.subarray(17, 33)), Buffer.from(b.subarray(17, 33)));
  });
});
