import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { sha256, SHA256_BLOCK, SHA256_SIZE } from "../../../firmware/crypto/sha256";
import { fromHex, toHex } from "../../../firmware/bytes";
import vectors from "../../vectors/sha256.json";
import { prng, randomBytes, randomLength } from "../../harness/random";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("sha256", () => {
  it("exports its sizes", () => {
    assert.equal(SHA256_BLOCK, 64);
    assert.equal(SHA256_SIZE, 32);
  });

  for (const c of vectors.cases) {
    it(`vector: ${c.name}`, () => {
      assert.equal(c.op, "sha256");
      assert.equal(toHex(sha256(fromHex(c.args[0])!)), c.out);
    });
  }

  it("matches node:crypto and @noble/hashes on 3,000 random messages (seed 0x5a256)", () => {
    const rand = prng(0x5a256);
    for (let i = 0; i < 3000; i++) {
      const m = randomBytes(rand, randomLength(rand, i));
      const got = hex(sha256(m));
      assert.equal(got, createHash("sha256").update(m).digest("hex"), `case ${i}, length ${m.length}`);
      assert.equal(got, hex(nobleSha256(m)), `case ${i}, length ${m.length} (noble)`);
    }
  });

  it("matches node:crypto on every length 0..300 of one buffer", () => {
    const all = randomBytes(prng(7), 300);
    for (let n = 0; n <= 300; n++) {
      const m = all.subarray(0, n);
      assert.equal(hex(sha256(m)), createHash("sha256").update(m).digest("hex"), `length ${n}`);
    }
  });

  it("does not modify its input and returns a fresh buffer", () => {
    const m = randomBytes(prng(9), 100);
    const copy = Uint8Array.from(m);
    const a = sha256(m);
    const b = sha256(m);
    assert.deepEqual(m, copy);
    assert.notEqual(a, b);
    assert.deepEqual(a, b);
  });

  it("hashes one million 'a' (FIPS 180-2 appendix B.3; too slow for the interpreters, so not in the JSON)", () => {
    const m = new Uint8Array(1000000).fill(0x61);
    assert.equal(hex(sha256(m)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });
});
