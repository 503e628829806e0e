// Generates test/vectors/gcm.json: AES-256-GCM vectors from "The Galois/Counter Mode of Operation"
// (McGrew & Viega, test cases 13-16; the AES-256 ones the backbone suite uses), each checked against
// node:crypto before it is written. The host runs them (test/host/crypto/aead.test.ts); boards never seal GCM.
// Run: tsx scripts/vectors/gcm.ts
import { createCipheriv } from "node:crypto";
import { writeFileSync } from "node:fs";

const K15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const P15 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const C15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
const published = [
  { name: "GCM test case 13 (AES-256, empty)", key: "00".repeat(32), iv: "00".repeat(12), aad: "", pt: "", out: "530f8afbc74536b9a963b4f1c4cb738b" },
  { name: "GCM test case 14 (AES-256, one zero block)", key: "00".repeat(32), iv: "00".repeat(12), aad: "", pt: "00".repeat(16), out: "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919" },
  { name: "GCM test case 15 (AES-256, 64 bytes)", key: K15, iv: "cafebabefacedbaddecaf888", aad: "", pt: P15, out: C15 + "b094dac5d93471bdec1a502270e3cc6c" },
  { name: "GCM test case 16 (AES-256, 60 bytes, aad)", key: K15, iv: "cafebabefacedbaddecaf888", aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2", pt: P15.slice(0, 120), out: C15.slice(0, 120) + "76fc6ece0f4e1768cddf8853bb2d551b" },
];
const cases = published.map((v) => {
  const c = createCipheriv("aes-256-gcm", Buffer.from(v.key, "hex"), Buffer.from(v.iv, "hex"));
  c.setAAD(Buffer.from(v.aad, "hex"));
  const got = Buffer.concat([c.update(Buffer.from(v.pt, "hex")), c.final(), c.getAuthTag()]).toString("hex");
  if (got !== v.out) throw new Error(`${v.name}: node:crypto gives ${got}, the paper ${v.out}`);
  return { name: v.name, op: "gcm.seal", args: [v.key, v.iv, v.aad, v.pt], out: v.out, only: ["host"] };
});
writeFileSync(new URL("../../test/vectors/gcm.json", import.meta.url), JSON.stringify({
  primitive: "AES-256-GCM",
  source: "McGrew & Viega, The Galois/Counter Mode of Operation (GCM), test cases 13-16; checked against node:crypto",
  cases,
}, null, 2) + "\n");
console.log(`test/vectors/gcm.json: ${cases.length} cases`);
