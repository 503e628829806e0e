import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { sha256 as nobleSha256, sha512 as nobleSha512 } from "@noble/hashes/sha2.js";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";
import { hmac, hmacSha256 } from "../../../firmware/crypto/hmac";
import { sha256 } from "../../../firmware/crypto/sha256";
import { fromHex, toHex } from "../../../firmware/bytes";
import vectors from "../../vectors/hmac.json";
import { prng, randomBytes, randomLength } from "../../harness/random";

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
