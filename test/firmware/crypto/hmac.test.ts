import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { sha256 as nobleSha256, sha512 as nobleSha512 } from "@noble/hashes/sha2.js";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";
import { hmac, hmacSha256 } from "../../../firmware/crypto/hmac";
import { sha256 } from "../../../firmware/crypto/sha256";
import { fromHex, toHex } from "../../../firmware/bytes";
import vectors from "../../vectors/hmac.json";

// (The helpers are repeated in each file so that any one file runs alone.)
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

describe("hmac", () => {
  for (const c of vectors.cases) {
    it(`vector: ${c.name}`, () => {
      assert.equal(c.op, "hmac.sha256");
      const key = fromHex(c.args[0])!;
      const msg = fromHex(c.args[1])!;
      assert.equal(toHex(hmacSha256(key, msg)), c.out);
      assert.equal(toHex(hmac(sha256, 64, key, msg)), c.out);
    });
  }

  it("matches node:crypto and @noble/hashes on 2,500 random keys and messages (seed 0x4ac)", () => {
    const rand = prng(0x4ac);
    for (let i = 0; i < 2500; i++) {
      // Key lengths cover empty, shorter than, equal to and longer than the 64-byte block.
      const key = randomBytes(rand, randomLength(rand, i));
      const msg = randomBytes(rand, randomLength(rand, 2500 - i));
      const got = hex(hmacSha256(key, msg));
      const ctx = `case ${i}, key ${key.length}, message ${msg.length}`;
      assert.equal(got, createHmac("sha256", key).update(msg).digest("hex"), ctx);
      assert.equal(got, hex(nobleHmac(nobleSha256, key, msg)), ctx + " (noble)");
    }
  });

  it("takes any hash: HMAC-SHA-512 through noble's sha512 with a 128-byte block", () => {
    const rand = prng(512);
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(rand, Math.floor(rand() * 300));
      const msg = randomBytes(rand, Math.floor(rand() * 300));
      assert.equal(hex(hmac(nobleSha512, 128, key, msg)), createHmac("sha512", key).update(msg).digest("hex"));
    }
  });

  it("does not modify key or message", () => {
    const key = randomBytes(prng(1), 100);
    const msg = randomBytes(prng(2), 50);
    const k2 = Uint8Array.from(key);
    const m2 = Uint8Array.from(msg);
    hmacSha256(key, msg);
    assert.deepEqual(key, k2);
    assert.deepEqual(msg, m2);
  });
});
