import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { sha256, SHA256_BLOCK, SHA256_SIZE } from "../../../firmware/crypto/sha256";
import { fromHex, toHex } from "../../../firmware/bytes";
import vectors from "../../vectors/sha256.json";

/** mulberry32: a seeded generator, so a failing random case can be replayed from its seed and index. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Lengths around every padding and block edge first, then uniform in 0..300. */
const EDGE_LENGTHS = [0, 1, 2, 31, 32, 33, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 121, 127, 128, 129, 191, 192, 193, 255, 256, 257, 300];

function randomLength(rand: () => number, i: number): number {
  return i < EDGE_LENGTHS.length ? EDGE_LENGTHS[i] : Math.floor(rand() * 301);
}

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
