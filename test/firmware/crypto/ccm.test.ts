import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { aesBlock, BlockEncrypt, ccmOpen, ccmSeal } from "../../../firmware/crypto/ccm";
import { fromHex, toHex } from "../../../firmware/bytes";
import { prngInt } from "../../harness/random";

interface Case {
  name: string;
  op: string;
  args: string[];
  out: string;
}
const vectors: { cases: Case[] } = JSON.parse(
  readFileSync(new URL("../../vectors/ccm.json", import.meta.url), "utf8"),
);

function randomBytes(rnd: (n: number) => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rnd(256);
  return b;
}
function nodeSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array, tagLen: number): string {
  const c = createCipheriv(`aes-${key.length * 8}-ccm` as "aes-128-ccm", key, nonce, { authTagLength: tagLen });
  c.setAAD(aad, { plaintextLength: pt.length });
  const ct = Buffer.concat([c.update(pt), c.final()]);
  return ct.toString("hex") + c.getAuthTag().toString("hex");
}
const h = (s: string) => fromHex(s)!;
const open = (enc: BlockEncrypt, n: Uint8Array, a: Uint8Array, s: Uint8Array, t: number) => {
  const r = ccmOpen(enc, n, a, s, t);
  return r === undefined ? "FAIL" : toHex(r);
};
const isString = (e: unknown) => typeof e === "string" && e.startsWith("ccm: ");

describe("ccm", () => {
  it("passes every vector in test/vectors/ccm.json", () => {
    let seals = 0;
    let fails = 0;
    for (const c of vectors.cases) {
      const enc = aesBlock(h(c.args[0]));
      const tagLen = Number(c.args[4]);
      if (c.op === "ccm.seal") {
        seals++;
        assert.equal(toHex(ccmSeal(enc, h(c.args[1]), h(c.args[2]), h(c.args[3]), tagLen)), c.out, c.name);
      } else {
        assert.equal(c.op, "ccm.open", c.name);
        if (c.out === "FAIL") fails++;
        assert.equal(open(enc, h(c.args[1]), h(c.args[2]), h(c.args[3]), tagLen), c.out, c.name);
      }
    }
    assert.ok(seals >= 27 && fails >= 3);
  });

  it("matches node:crypto on 2,000 random AES-128 messages and opens each", () => {
    const rnd = prngInt(0xcc3610);
    for (let i = 0; i < 2000; i++) {
      const key = randomBytes(rnd, 16);
      const nonce = randomBytes(rnd, 7 + rnd(7));
      const tagLen = 4 + 2 * rnd(7);
      const aad = randomBytes(rnd, rnd(65));
      const pt = randomBytes(rnd, rnd(301));
      const enc = aesBlock(key);
      const sealed = ccmSeal(enc, nonce, aad, pt, tagLen);
      const what = `case ${i}: nonce ${nonce.length}, tag ${tagLen}, aad ${aad.length}, pt ${pt.length}`;
      assert.equal(toHex(sealed), nodeSeal(key, nonce, aad, pt, tagLen), what);
      assert.equal(open(enc, nonce, aad, sealed, tagLen), toHex(pt), what);
    }
  });

  it("matches node:crypto on 200 random AES-256 messages", () => {
    const rnd = prngInt(256);
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(rnd, 32);
      const nonce = randomBytes(rnd, 7 + rnd(7));
      const tagLen = 4 + 2 * rnd(7);
      const aad = randomBytes(rnd, rnd(65));
      const pt = randomBytes(rnd, rnd(301));
      assert.equal(toHex(ccmSeal(aesBlock(key), nonce, aad, pt, tagLen)), nodeSeal(key, nonce, aad, pt, tagLen));
    }
  });

  it("handles the length limits: aad of 65279 bytes, 65535-byte message with L = 2", () => {
    const rnd = prngInt(3);
    const key = randomBytes(rnd, 16);
    const enc = aesBlock(key);
    const nonce13 = randomBytes(rnd, 13);
    const bigAad = randomBytes(rnd, 65279);
    const pt = randomBytes(rnd, 33);
    assert.equal(toHex(ccmSeal(enc, nonce13, bigAad, pt, 16)), nodeSeal(key, nonce13, bigAad, pt, 16));
    const bigPt = randomBytes(rnd, 65535);
    const sealed = ccmSeal(enc, nonce13, new Uint8Array(0), bigPt, 8);
    assert.equal(toHex(sealed), nodeSeal(key, nonce13, new Uint8Array(0), bigPt, 8));
    assert.equal(open(enc, nonce13, new Uint8Array(0), sealed, 8), toHex(bigPt));
    assert.throws(() => ccmSeal(enc, nonce13, new Uint8Array(0), new Uint8Array(65536), 8), isString);
    // L = 3 takes the same 65536 bytes.
    const nonce12 = randomBytes(rnd, 12);
    const p = new Uint8Array(65536);
    assert.equal(toHex(ccmSeal(enc, nonce12, pt, p, 4)), nodeSeal(key, nonce12, pt, p, 4));
  });

  it("refuses every single-bit flip of a sealed message, its aad and its nonce", () => {
    const rnd = prngInt(11);
    const cases = [
      { key: h("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"), nonce: h("00000003020100a0a1a2a3a4a5"), aad: h("0001020304050607"),
        pt: h("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e"), tagLen: 8 },
      { key: randomBytes(rnd, 16), nonce: randomBytes(rnd, 7), aad: randomBytes(rnd, 20), pt: randomBytes(rnd, 37), tagLen: 4 },
      { key: randomBytes(rnd, 32), nonce: randomBytes(rnd, 11), aad: new Uint8Array(0), pt: new Uint8Array(0), tagLen: 16 },
    ];
    for (const c of cases) {
      const enc = aesBlock(c.key);
      const sealed = ccmSeal(enc, c.nonce, c.aad, c.pt, c.tagLen);
      assert.equal(open(enc, c.nonce, c.aad, sealed, c.tagLen), toHex(c.pt));
      for (const [buf, which] of [[sealed, "sealed"], [c.aad, "aad"], [c.nonce, "nonce"]] as const) {
        for (let bit = 0; bit < buf.length * 8; bit++) {
          buf[bit >>> 3] ^= 1 << (bit & 7);
          assert.equal(open(enc, c.nonce, c.aad, sealed, c.tagLen), "FAIL", `${which} bit ${bit}`);
          buf[bit >>> 3] ^= 1 << (bit & 7);
        }
      }
      assert.equal(open(enc, c.nonce, c.aad, sealed, c.tagLen), toHex(c.pt));
    }
  });

  it("refuses truncated, extended and short messages and a different tag length", () => {
    const enc = aesBlock(h("404142434445464748494a4b4c4d4e4f"));
    const nonce = h("10111213141516");
    const aad = h("0001020304050607");
    const sealed = ccmSeal(enc, nonce, aad, h("20212223"), 4);
    assert.equal(toHex(sealed), "7162015b4dac255d");
    assert.equal(open(enc, nonce, aad, sealed.subarray(0, 7), 4), "FAIL");
    assert.equal(open(enc, nonce, aad, sealed.subarray(0, 3), 4), "FAIL");
    assert.equal(open(enc, nonce, aad, new Uint8Array(0), 4), "FAIL");
    const longer = new Uint8Array(9);
    longer.set(sealed);
    assert.equal(open(enc, nonce, aad, longer, 4), "FAIL");
    assert.equal(open(enc, nonce, aad, sealed, 6), "FAIL");
    // A message of exactly the tag: empty plaintext opens to empty bytes, not undefined.
    const empty = ccmSeal(enc, nonce, aad, new Uint8Array(0), 4);
    assert.equal(empty.length, 4);
    assert.equal(open(enc, nonce, aad, empty, 4), "");
  });

  it("throws a string for bad parameters on seal and open", () => {
    const enc = aesBlock(new Uint8Array(16));
    const z = (n: number) => new Uint8Array(n);
    const bad: [Uint8Array, Uint8Array, number][] = [
      [z(6), z(0), 8], [z(14), z(0), 8], [z(0), z(0), 8],
      [z(13), z(0), 0], [z(13), z(0), 2], [z(13), z(0), 3], [z(13), z(0), 5], [z(13), z(0), 17],
      [z(13), z(0), 18], [z(13), z(0), 4.5], [z(13), z(0), -4], [z(13), z(0xff00), 8],
    ];
    for (const [nonce, aad, tagLen] of bad) {
      const what = `nonce ${nonce.length}, aad ${aad.length}, tag ${tagLen}`;
      assert.throws(() => ccmSeal(enc, nonce, aad, z(5), tagLen), isString, what);
      assert.throws(() => ccmOpen(enc, nonce, aad, z(30), tagLen), isString, what);
    }
    assert.throws(() => aesBlock(z(24)), (e: unknown) => typeof e === "string");
  });

  it("never asks a plugged-in block cipher to encrypt in place", () => {
    const inner = aesBlock(h("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"));
    let calls = 0;
    const enc: BlockEncrypt = (input, out) => {
      assert.notEqual(input, out);
      assert.equal(input.length, 16);
      assert.equal(out.length, 16);
      calls++;
      inner(input, out);
    };
    const c = vectors.cases[0];
    assert.equal(toHex(ccmSeal(enc, h(c.args[1]), h(c.args[2]), h(c.args[3]), Number(c.args[4]))), c.out);
    assert.ok(calls > 0);
  });
});
