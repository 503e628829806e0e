import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { format, inspect } from "node:util";
import { wrapAad } from "../../../host/controller/keyring";
import { loadMasterKeys, MasterKeyDir } from "../../../host/controller/keydir";
import { MasterKey, MasterKeyError, readMasterKeyFile } from "../../../host/controller/masterkey";
import { openControllerStore } from "../../../host/controller/store";
import { stopSharedPostgres } from "./backends";

after(stopSharedPostgres);

describe("master keys: loading, wrapping, and never showing the key", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "sesame-keys-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reads a key file of 32 raw bytes or 64 hex characters, and SESAME_MASTER_KEY", () => {
    const raw = randomBytes(32);
    writeFileSync(join(dir, "raw.key"), raw);
    writeFileSync(join(dir, "hex.key"), "  " + raw.toString("hex").toUpperCase() + "\n");
    const a = readMasterKeyFile(join(dir, "raw.key"));
    const b = readMasterKeyFile(join(dir, "hex.key"));
    assert.equal(a.fingerprint, b.fingerprint);
    const fromEnv = loadMasterKeys({ env: { SESAME_MASTER_KEY: raw.toString("hex") } });
    assert.deepEqual(fromEnv.keys.map((k) => k.fingerprint), [a.fingerprint]);
    // One key in three places counts once; a different key is a second one.
    const other = randomBytes(32).toString("hex");
    writeFileSync(join(dir, "other.key"), other);
    const all = loadMasterKeys({ dir, env: { SESAME_MASTER_KEY: raw.toString("hex") } });
    assert.equal(all.keys.length, 2);
  });

  it("a malformed key file or variable is a clear error that does not echo its content", () => {
    const almost = randomBytes(31).toString("hex") + "zz";
    writeFileSync(join(dir, "bad.key"), almost);
    assert.throws(() => readMasterKeyFile(join(dir, "bad.key")), (e: Error) => {
      assert.ok(e instanceof MasterKeyError);
      assert.match(e.message, /bad\.key: expected 32 raw bytes or 64 hex characters/);
      assert.ok(!e.message.includes(almost.slice(0, 16)));
      return true;
    });
    assert.throws(() => readMasterKeyFile(join(dir, "missing.key")), /missing\.key: ENOENT/);
    assert.throws(() => loadMasterKeys({ env: { SESAME_MASTER_KEY: "abc" } }), /SESAME_MASTER_KEY: expected 64 hex characters/);
  });

  it("a staged key file is written for its owner only, becomes a key file when promoted, and is never overwritten", () => {
    const keys = new MasterKeyDir(join(dir, "keys"));
    const key = MasterKey.generate();
    const pending = keys.stage(key);
    assert.equal(pending, keys.pendingFile(key.fingerprint));
    assert.equal(statSync(keys.path).mode & 0o777, 0o700);
    assert.equal(statSync(pending).mode & 0o777, 0o600);
    assert.deepEqual(loadMasterKeys({ dir: keys.path, env: {} }).pending.map((k) => k.fingerprint), [key.fingerprint]);
    const path = keys.promote(key.fingerprint);
    assert.equal(readMasterKeyFile(path).fingerprint, key.fingerprint);
    assert.deepEqual(loadMasterKeys({ dir: keys.path, env: {} }).keys.map((k) => k.fingerprint), [key.fingerprint]);
    assert.throws(() => key.writeTo(path), /EEXIST/);
  });

  it("printing, JSON, inspect and console formatting show the fingerprint, never the key", () => {
    const raw = randomBytes(32);
    const k = new MasterKey(raw);
    const secretForms = [raw.toString("hex"), raw.toString("base64"), raw.toString("base64url"), [...raw.subarray(0, 8)].join(", ")];
    const shown = [
      String(k), `${k}`, JSON.stringify({ k }), inspect(k), inspect({ k }, { showHidden: true, depth: Infinity }),
      format("%o %O %s %j", k, k, k, { k }), Object.keys(k).join(","), JSON.stringify(Object.entries(k)),
    ];
    for (const s of shown) for (const f of secretForms) assert.ok(!s.includes(f), `key material in: ${s}`);
    assert.equal(String(k), `MasterKey(${k.fingerprint})`);
    assert.equal(inspect(k), `MasterKey(${k.fingerprint})`);
    assert.equal(format("%o", k), `MasterKey(${k.fingerprint})`);
    assert.deepEqual(JSON.parse(JSON.stringify(k)), { fingerprint: k.fingerprint });
  });

  it("wrap/unwrap round trip; the wrap is bound to its AAD and its key", () => {
    const k = MasterKey.generate();
    const plain = randomBytes(32);
    const aad = wrapAad("device", "00112233", 1);
    const w = k.wrap(plain, aad);
    assert.equal(w.length, 12 + 32 + 16);
    assert.deepEqual(Buffer.from(k.unwrap(w, aad)), plain);
    // Fresh nonce per wrap: two wraps of one key differ.
    assert.notDeepEqual(Buffer.from(k.wrap(plain, aad)), Buffer.from(w));
    assert.throws(() => k.unwrap(w, wrapAad("device", "00112234", 1)), /wrong key, or the wrapped key belongs to another row/);
    assert.throws(() => k.unwrap(w, wrapAad("device", "00112233", 2)), MasterKeyError);
    assert.throws(() => k.unwrap(w, wrapAad("responder", "00112233", 1)), MasterKeyError);
    assert.throws(() => MasterKey.generate().unwrap(w, aad), MasterKeyError);
    const flipped = Buffer.from(w);
    flipped[20] ^= 1;
    assert.throws(() => k.unwrap(flipped, aad), MasterKeyError);
    assert.throws(() => k.unwrap(w.subarray(0, 20), aad), /too short/);
  });

  it("a store never shows its master key either (keyring and registry inspected deeply)", async () => {
    const raw = randomBytes(32);
    const store = await openControllerStore({ db: {}, masterKeys: [new MasterKey(raw)] });
    try {
      await store.registry.provision({ board: "puckjs" });
      const dump = inspect(store, { showHidden: true, depth: 6 }) + inspect(store.keyring, { showHidden: true, depth: Infinity });
      assert.ok(!dump.includes(raw.toString("hex")));
      assert.ok(dump.includes(new MasterKey(raw).fingerprint));
    } finally {
      await store.close();
    }
  });
});
