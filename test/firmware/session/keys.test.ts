import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fromHex, toHex, wipe } from "../../../firmware/bytes";
import { CryptoProvider, portableProvider } from "../../../firmware/crypto/provider";
import { DIR_I2R, DIR_R2I, epochKeys, nextTrafficSecret, trafficSecret } from "../../../firmware/session/keys";
import { Suite, SUITE_BACKBONE, SUITE_CONSTRAINED } from "../../../firmware/suite";

const p: CryptoProvider = portableProvider((n) => randomBytes(n));
const SUITES: Suite[] = [SUITE_CONSTRAINED, SUITE_BACKBONE];
const km = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")!;

type Case = { name: string; op: string; args: string[]; out: string };
const vectors = JSON.parse(readFileSync(new URL("../../vectors/keys.json", import.meta.url), "utf8")) as {
  primitive: string;
  source: string;
  cases: Case[];
};

/** The keys of index `index` of direction `dir`, ratcheting (and wiping) as a device does. */
function epochAt(master: Uint8Array, dir: number, index: number, suite: Suite) {
  let s = trafficSecret(p, master, dir);
  for (let i = 0; i < index; i++) {
    const n = nextTrafficSecret(p, s);
    wipe(s);
    s = n;
  }
  return epochKeys(p, s, index, suite);
}

describe("session/keys: key schedule", () => {
  it("is deterministic", () => {
    for (const dir of [DIR_I2R, DIR_R2I]) {
      assert.equal(toHex(trafficSecret(p, km, dir)), toHex(trafficSecret(p, km, dir)));
      const a = epochAt(km, dir, 3, SUITE_CONSTRAINED);
      const b = epochAt(km, dir, 3, SUITE_CONSTRAINED);
      assert.equal(toHex(a.key), toHex(b.key));
      assert.equal(toHex(a.iv), toHex(b.iv));
      assert.equal(a.index, 3);
    }
  });

  it("gives each direction its own secret, key and IV", () => {
    assert.equal(DIR_I2R, 0);
    assert.equal(DIR_R2I, 1);
    const i2r = trafficSecret(p, km, DIR_I2R);
    const r2i = trafficSecret(p, km, DIR_R2I);
    assert.equal(i2r.length, 32);
    assert.notEqual(toHex(i2r), toHex(r2i));
    for (const suite of SUITES) {
      const a = epochKeys(p, i2r, 0, suite);
      const b = epochKeys(p, r2i, 0, suite);
      assert.notEqual(toHex(a.key), toHex(b.key));
      assert.notEqual(toHex(a.iv), toHex(b.iv));
    }
    assert.throws(() => trafficSecret(p, km, 2), /keys: direction/);
  });

  it("gives successive key indices different secrets, keys and IVs", () => {
    const seen = new Set<string>();
    let s = trafficSecret(p, km, DIR_I2R);
    for (let i = 0; i < 50; i++) {
      const e = epochKeys(p, s, i, SUITE_CONSTRAINED);
      for (const x of [toHex(s), toHex(e.key), toHex(e.iv)]) {
        assert.equal(seen.has(x), false, `index ${i} repeats ${x}`);
        seen.add(x);
      }
      s = nextTrafficSecret(p, s);
    }
  });

  it("does not change or depend on anything but the secret (index is only carried)", () => {
    const s = trafficSecret(p, km, DIR_R2I);
    const copy = toHex(s);
    const a = epochKeys(p, s, 0, SUITE_BACKBONE);
    const b = epochKeys(p, s, 1, SUITE_BACKBONE);
    assert.equal(toHex(s), copy);
    assert.equal(toHex(a.key), toHex(b.key));
    assert.equal(b.index, 1);
    nextTrafficSecret(p, s);
    assert.equal(toHex(s), copy, "ratcheting leaves wiping the old secret to the caller");
  });

  it("has the suite's key and IV lengths, and a suite's short key is a prefix of its long one", () => {
    const s = trafficSecret(p, km, DIR_I2R);
    const c = epochKeys(p, s, 0, SUITE_CONSTRAINED);
    const b = epochKeys(p, s, 0, SUITE_BACKBONE);
    assert.equal(c.key.length, 16);
    assert.equal(c.iv.length, 13);
    assert.equal(b.key.length, 32);
    assert.equal(b.iv.length, 12);
    assert.equal(toHex(b.key).slice(0, 32), toHex(c.key));
    assert.equal(toHex(c.iv).slice(0, 24), toHex(b.iv));
  });

  it("matches HMAC-SHA-256 computed by node:crypto", () => {
    const h = (k: Uint8Array, label: string) =>
      createHmac("sha256", k).update(Buffer.concat([Buffer.from(label), Buffer.from([1])])).digest("hex");
    const master = randomBytes(32);
    const s0 = trafficSecret(p, master, DIR_R2I);
    assert.equal(toHex(s0), h(master, "sesame r2i"));
    assert.equal(toHex(nextTrafficSecret(p, s0)), h(s0, "sesame ku"));
    const e = epochKeys(p, s0, 0, SUITE_BACKBONE);
    assert.equal(toHex(e.key), h(s0, "sesame key"));
    assert.equal(toHex(e.iv), h(s0, "sesame iv").slice(0, 24));
  });

  it("accepts a master key of any length (HMAC keys)", () => {
    assert.equal(trafficSecret(p, fromHex("")!, DIR_I2R).length, 32);
    assert.equal(trafficSecret(p, randomBytes(100), DIR_I2R).length, 32);
  });
});

describe("session/keys: test/vectors/keys.json", () => {
  it("is in the uniform vector format", () => {
    assert.equal(vectors.primitive, "sesame key schedule");
    assert.ok(vectors.cases.length >= 10);
    const names = new Set(vectors.cases.map((c) => c.name));
    assert.equal(names.size, vectors.cases.length, "case names are unique");
    for (const c of vectors.cases) {
      assert.equal(c.op, "keys.epoch");
      assert.equal(c.args.length, 4);
      assert.match(c.out, /^[0-9a-f]+\.[0-9a-f]+$/);
    }
    const suites = new Set(vectors.cases.map((c) => c.args[3]));
    const dirs = new Set(vectors.cases.map((c) => c.args[1]));
    assert.deepEqual([...suites].sort(), ["1", "2"]);
    assert.deepEqual([...dirs].sort(), ["0", "1"]);
  });

  for (const c of vectors.cases) {
    it(c.name, () => {
      const suite = SUITES.find((s) => s.id === Number(c.args[3]))!;
      const e = epochAt(fromHex(c.args[0])!, Number(c.args[1]), Number(c.args[2]), suite);
      assert.equal(`${toHex(e.key)}.${toHex(e.iv)}`, c.out);
      assert.equal(e.index & 1, Number(c.args[2]) & 1);
    });
  }
});
