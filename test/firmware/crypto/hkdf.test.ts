import assert from "node:assert/strict";
import { hkdfSync } from "node:crypto";
import { sha256 as nobleSha256, sha512 as nobleSha512 } from "@noble/hashes/sha2.js";
import { hkdf as nobleHkdf } from "@noble/hashes/hkdf.js";
import { hkdfExpand, hkdfExtract, hkdfSha256 } from "../../../firmware/crypto/hkdf";
import { sha256 } from "../../../firmware/crypto/sha256";
import { hmacSha256 } from "../../../firmware/crypto/hmac";
import { fromHex, toHex } from "../../../firmware/bytes";
import vectors from "../../vectors/hkdf.json";
import { prng, randomBytes, randomLength } from "../../harness/random";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const nodeHkdf = (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, n: number) =>
  Buffer.from(hkdfSync("sha256", ikm, salt, info, n)).toString("hex");

describe("hkdf", () => {
  for (const c of vectors.cases) {
    it(`vector: ${c.name}`, () => {
      assert.equal(c.op, "hkdf.sha256");
      const ikm = fromHex(c.args[0])!;
      const salt = fromHex(c.args[1])!;
      const info = fromHex(c.args[2])!;
      const n = parseInt(c.args[3], 10);
      assert.equal(toHex(hkdfSha256(ikm, salt, info, n)), c.out);
      const prk = hkdfExtract(sha256, 64, salt, ikm);
      assert.equal(toHex(hkdfExpand(sha256, 64, prk, info, n)), c.out);
    });
  }

  it("matches node:crypto and @noble/hashes on 2,000 random inputs (seed 0x4bdf)", () => {
    const rand = prng(0x4bdf);
    for (let i = 0; i < 2000; i++) {
      const ikm = randomBytes(rand, randomLength(rand, i));
      // Every fourth salt is empty: the RFC's "not provided".
      const salt = randomBytes(rand, i % 4 === 0 ? 0 : randomLength(rand, 2000 - i));
      const info = randomBytes(rand, Math.floor(rand() * 301));
      const n = randomLength(rand, i);
      const got = hex(hkdfSha256(ikm, salt, info, n));
      const ctx = `case ${i}: ikm ${ikm.length}, salt ${salt.length}, info ${info.length}, length ${n}`;
      assert.equal(got, nodeHkdf(ikm, salt, info, n), ctx);
      assert.equal(got, hex(nobleHkdf(nobleSha256, ikm, salt, info, n)), ctx + " (noble)");
    }
  });

  it("expands to exactly 255 blocks, and to 0 bytes", () => {
    const ikm = randomBytes(prng(3), 40);
    const salt = randomBytes(prng(4), 20);
    const info = randomBytes(prng(5), 10);
    assert.equal(hex(hkdfSha256(ikm, salt, info, 255 * 32)), nodeHkdf(ikm, salt, info, 255 * 32));
    assert.equal(hkdfSha256(ikm, salt, info, 0).length, 0);
  });

  it("treats an empty salt as 32 zero bytes", () => {
    const ikm = randomBytes(prng(6), 22);
    assert.deepEqual(hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 42), hkdfSha256(ikm, new Uint8Array(32), new Uint8Array(0), 42));
  });

  it("extract is HMAC(salt, ikm)", () => {
    const ikm = randomBytes(prng(8), 50);
    const salt = randomBytes(prng(10), 70);
    assert.deepEqual(hkdfExtract(sha256, 64, salt, ikm), hmacSha256(salt, ikm));
  });

  it("takes any hash: HKDF-SHA-512 through noble's sha512", () => {
    const ikm = randomBytes(prng(11), 64);
    const salt = randomBytes(prng(12), 30);
    const info = randomBytes(prng(13), 12);
    const prk = hkdfExtract(nobleSha512, 128, salt, ikm);
    const got = hkdfExpand(nobleSha512, 128, prk, info, 200);
    assert.equal(hex(got), Buffer.from(hkdfSync("sha512", ikm, salt, info, 200)).toString("hex"));
  });

  it("refuses an output longer than 255 * HashLen, or negative, with a string", () => {
    const prk = new Uint8Array(32);
    const e = new Uint8Array(0);
    assert.throws(() => hkdfExpand(sha256, 64, prk, e, 255 * 32 + 1), (x: unknown) => typeof x === "string");
    assert.throws(() => hkdfSha256(e, e, e, 255 * 32 + 1), (x: unknown) => typeof x === "string");
    assert.throws(() => hkdfExpand(sha256, 64, prk, e, 100000), (x: unknown) => typeof x === "string");
    assert.throws(() => hkdfExpand(sha256, 64, prk, e, -1), (x: unknown) => typeof x === "string");
    assert.throws(() => hkdfExpand(nobleSha512, 128, prk, e, 255 * 64 + 1), (x: unknown) => typeof x === "string");
  });
});
