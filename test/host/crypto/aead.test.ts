import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { gcm } from "@noble/ciphers/aes.js";
import { nodeCcm, nodeGcm } from "../../../host/crypto/aead";
import { ccmSeal, aesBlock } from "../../../firmware/crypto/ccm";
import vectors from "../../vectors/gcm.json" with { type: "json" };

const b = (h: string) => Buffer.from(h, "hex");

describe("host AEADs (node:crypto)", () => {
  it("AES-256-GCM gives the published vectors (GCM paper, test cases 13-16) and opens them", () => {
    for (const c of vectors.cases) {
      const [key, iv, aad, pt] = c.args;
      const a = nodeGcm(b(key));
      assert.equal(Buffer.from(a.seal(b(iv), b(aad), b(pt))).toString("hex"), c.out, c.name);
      assert.equal(Buffer.from(a.open(b(iv), b(aad), b(c.out))!).toString("hex"), pt, c.name);
      const bad = b(c.out);
      bad[bad.length - 1] ^= 1;
      assert.equal(a.open(b(iv), b(aad), bad), undefined);
    }
  });

  it("AES-256-GCM matches @noble/ciphers on 2000 random inputs", () => {
    for (let n = 0; n < 2000; n++) {
      const key = randomBytes(32), iv = randomBytes(12), aad = randomBytes(n % 40), pt = randomBytes(n % 300);
      const ours = Buffer.from(nodeGcm(key).seal(iv, aad, pt));
      const noble = Buffer.from(gcm(key, iv, aad).encrypt(pt));
      assert.deepEqual(ours, noble);
    }
  });

  it("AES-128-CCM-8 on node:crypto matches the portable CCM on 2000 random inputs, and rejects short input", () => {
    for (let n = 0; n < 2000; n++) {
      const key = randomBytes(16), nonce = randomBytes(13), aad = randomBytes(n % 20), pt = randomBytes(n % 300);
      assert.deepEqual(Buffer.from(nodeCcm(key, 8, 13).seal(nonce, aad, pt)), Buffer.from(ccmSeal(aesBlock(key), nonce, aad, pt, 8)));
    }
    assert.equal(nodeCcm(randomBytes(16), 8, 13).open(randomBytes(13), new Uint8Array(0), randomBytes(7)), undefined);
    assert.throws(() => nodeCcm(randomBytes(15), 8, 13), /16-byte key/);
    assert.throws(() => nodeGcm(randomBytes(16)), /32-byte key/);
  });
});
