import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes } from "node:crypto";
import { x25519 as noble } from "@noble/curves/ed25519.js";
import { fromHex, toHex } from "../../../firmware/bytes";
import {
  x25519,
  x25519Base,
  x25519Start,
  x25519Step,
  x25519Result,
  x25519StepCalls,
  X25519_LADDER_STEPS,
  X25519_LADDER_STEP_OPS,
  X25519_INVERT_OPS,
  X25519_FIELD_OPS,
} from "../../../firmware/crypto/x25519";

type Case = { name: string; op: string; args: string[]; out: string; only?: string[] };
const vectors: { primitive: string; source: string; cases: Case[] } = JSON.parse(
  readFileSync(new URL("../../vectors/x25519.json", import.meta.url), "utf8"),
);

function hex(s: string): Uint8Array {
  const b = fromHex(s);
  if (b === undefined) throw new Error("bad hex " + s);
  return b;
}

function sliced(scalar: Uint8Array, u: Uint8Array, steps: number): { out: Uint8Array; calls: number } {
  const job = x25519Start(scalar, u);
  let calls = 0;
  for (;;) {
    calls++;
    if (x25519Step(job, steps)) break;
    assert.ok(calls < 10000, "x25519Step never finishes");
  }
  return { out: x25519Result(job), calls: calls };
}

function iterate(n: number): Uint8Array {
  let k = hex("09" + "00".repeat(31));
  let u = k;
  for (let i = 0; i < n; i++) {
    const r = x25519(k, u);
    u = k;
    k = r;
  }
  return k;
}

function run(c: Case): string {
  if (c.op === "x25519") return toHex(x25519(hex(c.args[0]), hex(c.args[1])));
  if (c.op === "x25519.iterate") return toHex(iterate(parseInt(c.args[0], 10)));
  if (c.op === "x25519.sliced") return toHex(sliced(hex(c.args[0]), hex(c.args[1]), parseInt(c.args[2], 10)).out);
  throw new Error("unknown op " + c.op);
}

// node:crypto (OpenSSL) takes raw X25519 keys behind fixed DER prefixes
const PKCS8 = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI = Buffer.from("302a300506032b656e032100", "hex");
function openssl(scalar: Uint8Array, u: Uint8Array): string {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8, scalar]), format: "der", type: "pkcs8" });
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI, u]), format: "der", type: "spki" });
  return diffieHellman({ privateKey, publicKey }).toString("hex");
}

function random32(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

describe("x25519", () => {
  describe("vectors (test/vectors/x25519.json)", () => {
    it("has the uniform format", () => {
      assert.equal(vectors.primitive, "X25519");
      assert.ok(vectors.cases.length >= 10);
    });
    for (const c of vectors.cases) {
      it(c.name, () => {
        assert.equal(run(c), c.out);
      });
    }
  });

  it("x25519Base is X25519(k, 9)", () => {
    const alice = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    assert.equal(toHex(x25519Base(alice)), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    for (let i = 0; i < 20; i++) {
      const k = random32();
      assert.equal(toHex(x25519Base(k)), toHex(noble.getPublicKey(k)));
    }
  });

  it("agrees with @noble/curves and node:crypto on 300 random scalar/u pairs", () => {
    for (let i = 0; i < 300; i++) {
      const k = random32();
      const u = random32(); // top bit random too: it must be ignored by all three
      const ours = toHex(x25519(k, u));
      assert.equal(ours, toHex(noble.scalarMult(k, u)), "noble " + toHex(k) + " " + toHex(u));
      assert.equal(ours, openssl(k, u), "openssl " + toHex(k) + " " + toHex(u));
    }
  });

  it("agrees with node:crypto on random key pairs, both directions", () => {
    for (let i = 0; i < 30; i++) {
      const a = random32();
      const b = random32();
      const shared = x25519(a, x25519Base(b));
      assert.equal(toHex(shared), toHex(x25519(b, x25519Base(a))));
      assert.equal(toHex(shared), openssl(a, x25519Base(b)));
    }
  });

  it("reduces non-canonical u (p .. 2^255 - 1) and ignores the top bit", () => {
    // p + d encodes the same field element as d; with the top bit set it is the same input again
    const k = random32();
    for (let d = 2; d <= 18; d++) {
      const pd = hex("ed" + "ff".repeat(30) + "7f");
      pd[0] = 0xed + d;
      const small = new Uint8Array(32);
      small[0] = d;
      const want = toHex(x25519(k, small));
      assert.equal(toHex(x25519(k, pd)), want, "p + " + d);
      assert.equal(toHex(noble.scalarMult(k, pd)), want, "noble p + " + d);
      pd[31] |= 0x80;
      assert.equal(toHex(x25519(k, pd)), want, "p + " + d + " with the top bit");
    }
  });

  it("sends the low-order points 0 and 1 to the all-zero output (the caller must check, RFC 7748 6.1)", () => {
    const k = random32();
    const zero = new Uint8Array(32);
    const one = new Uint8Array(32);
    one[0] = 1;
    assert.equal(toHex(x25519(k, zero)), "00".repeat(32));
    assert.equal(toHex(x25519(k, one)), "00".repeat(32));
  });

  it("clamps the scalar: bits 0-2 and 255 ignored, bit 254 forced", () => {
    const k = random32();
    const u = random32();
    const k2 = new Uint8Array(k);
    k2[0] ^= 7;
    k2[31] ^= 0xc0; // flips 255 and 254; clamping sets 254 anyway
    assert.equal(toHex(x25519(k2, u)), toHex(x25519(k, u)));
  });

  it("sliced equals unsliced for random inputs and several step sizes", () => {
    const sizes = [1, 2, 3, 7, 10, 27, 64, 254, 255, 256, 1000];
    for (let i = 0; i < 12; i++) {
      const k = random32();
      const u = random32();
      const want = toHex(x25519(k, u));
      for (const s of sizes) assert.equal(toHex(sliced(k, u, s).out), want, "steps " + s);
    }
  });

  it("documents its work: 255 ladder steps of 10 field operations, then 266 for the inversion", () => {
    assert.equal(X25519_LADDER_STEPS, 255);
    assert.equal(X25519_LADDER_STEP_OPS, 10);
    assert.equal(X25519_INVERT_OPS, 254 + 12);
    assert.equal(X25519_FIELD_OPS, 255 * 10 + 266);
  });

  it("never does more than the promised work per x25519Step call", () => {
    const k = random32();
    const u = random32();
    for (const steps of [1, 2, 5, 7, 30, 255, 300]) {
      const job = x25519Start(k, u);
      let calls = 0;
      let ladderCalls = 0;
      let done = false;
      while (!done) {
        const bitBefore = job.bit;
        done = x25519Step(job, steps);
        calls++;
        if (bitBefore >= 0) {
          ladderCalls++;
          // ladder steps done in this call (job.bit ends at -1 once the ladder is through)
          assert.ok(bitBefore - job.bit <= steps, "ladder steps in one call");
        }
      }
      // The whole run is X25519_FIELD_OPS units and a call may spend at most 10 * steps of them, so
      // anything below this count would mean some call overspent.
      assert.equal(calls, x25519StepCalls(steps), "calls for steps " + steps);
      assert.ok(calls >= Math.ceil(X25519_FIELD_OPS / (10 * steps)));
      assert.equal(ladderCalls, Math.ceil(255 / steps), "ladder calls for steps " + steps);
      if (steps === 1) assert.ok(calls >= 255 + Math.ceil(266 / 10), "ladder steps plus inversion slices");
      assert.equal(toHex(x25519Result(job)), toHex(x25519(k, u)));
    }
  });

  it("a finished job answers at once; an unfinished one has no result; a bad length is refused", () => {
    const job = x25519Start(random32(), random32());
    assert.equal(x25519Step(job, 0), false); // counts as 1 ladder step
    assert.equal(job.bit, 253);
    assert.throws(() => x25519Result(job));
    while (!x25519Step(job, 50)) {
      // run to the end
    }
    const r = toHex(x25519Result(job));
    assert.equal(x25519Step(job, 1), true);
    assert.equal(toHex(x25519Result(job)), r);
    assert.throws(() => x25519(new Uint8Array(31), random32()));
    assert.throws(() => x25519(random32(), new Uint8Array(33)));
  });
});
