import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { aesEncryptBlock, aesExpandKey } from "../../../firmware/crypto/aes";
import { fromHex, toHex } from "../../../firmware/bytes";
import { prngInt } from "../../harness/random";

interface Case {
  name: string;
  op: string;
  args: string[];
  out: string;
}
const vectors: { cases: Case[] } = JSON.parse(
  readFileSync(new URL("../../vectors/aes.json", import.meta.url), "utf8"),
);

function randomBytes(rnd: (n: number) => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rnd(256);
  return b;
}
function nodeEcb(key: Uint8Array, block: Uint8Array): string {
  const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]).toString("hex");
}
function encrypt(key: Uint8Array, block: Uint8Array): string {
  const out = new Uint8Array(16);
  aesEncryptBlock(aesExpandKey(key), block, 0, out, 0);
  return toHex(out);
}

describe("aes", () => {
  it("passes every vector in test/vectors/aes.json", () => {
    assert.ok(vectors.cases.length >= 10);
    for (const c of vectors.cases) {
      assert.equal(c.op, "aes.encrypt", c.name);
      assert.equal(encrypt(fromHex(c.args[0])!, fromHex(c.args[1])!), c.out, c.name);
    }
  });

  it("matches node:crypto on 2,000 random AES-128 and 2,000 random AES-256 blocks", () => {
    const rnd = prngInt(0x5e5a3e01);
    for (let i = 0; i < 4000; i++) {
      const key = randomBytes(rnd, i < 2000 ? 16 : 32);
      const block = randomBytes(rnd, 16);
      assert.equal(encrypt(key, block), nodeEcb(key, block), `case ${i}`);
    }
  });

  it("reuses one expanded key across many blocks and offsets, in place or not", () => {
    const rnd = prngInt(7);
    for (const len of [16, 32]) {
      const key = randomBytes(rnd, len);
      const rk = aesExpandKey(key);
      assert.equal(rk.length, len === 16 ? 44 : 60);
      const buf = randomBytes(rnd, 80);
      const expected = [0, 16, 32, 48, 64].map((o) => nodeEcb(key, buf.subarray(o, o + 16)));
      const out = new Uint8Array(83);
      for (let b = 0; b < 5; b++) aesEncryptBlock(rk, buf, 16 * b, out, 3 + 16 * b);
      for (let b = 0; b < 5; b++) assert.equal(toHex(out.subarray(3 + 16 * b, 19 + 16 * b)), expected[b]);
      for (let b = 0; b < 5; b++) aesEncryptBlock(rk, buf, 16 * b, buf, 16 * b); // in place
      for (let b = 0; b < 5; b++) assert.equal(toHex(buf.subarray(16 * b, 16 * b + 16)), expected[b]);
    }
  });

  it("does not modify the key or the input", () => {
    const key = fromHex("000102030405060708090a0b0c0d0e0f")!;
    const input = fromHex("00112233445566778899aabbccddeeff")!;
    aesEncryptBlock(aesExpandKey(key), input, 0, new Uint8Array(16), 0);
    assert.equal(toHex(key), "000102030405060708090a0b0c0d0e0f");
    assert.equal(toHex(input), "00112233445566778899aabbccddeeff");
  });

  it("rejects key lengths other than 16 and 32 with a string", () => {
    for (const n of [0, 1, 15, 17, 24, 31, 33, 64]) {
      assert.throws(
        () => aesExpandKey(new Uint8Array(n)),
        (e: unknown) => typeof e === "string" && e.includes("16 or 32"),
        `length ${n}`,
      );
    }
  });
});
