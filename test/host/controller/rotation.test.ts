import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseFields } from "../../../firmware/runtime/config";
import { hex, pidOf } from "../../../host/controller/credentials";
import { openDb } from "../../../host/controller/db/open";
import { MasterKeyDir } from "../../../host/controller/keydir";
import { MasterKey, MasterKeyError } from "../../../host/controller/masterkey";
import { recordMasterKey } from "../../../host/controller/rotation";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { Logger, memorySink } from "../../../host/telemetry/log";
import { handoffOf } from "../../harness/handoff";
import { BACKENDS, stopSharedPostgres } from "./backends";

after(stopSharedPostgres);

async function provisionPsk(store: ControllerStore, n: number, into: Map<string, string>): Promise<void> {
  for (let i = 0; i < n; i++) {
    const p = await store.registry.provision({ board: "puckjs", name: `psk-${i}` });
    into.set(p.device.id, parseFields(p.config)["psk"]);
  }
}

/** A session of each device handed over by a terminate gateway (session-store.ts): its SPI and saved form. */
async function handOver(store: ControllerStore, devices: string[]): Promise<Map<number, string>> {
  const h = handoffOf(store);
  const saved = new Map<number, string>();
  for (const [i, device] of devices.entries()) {
    const text = h.saved(device, 100 + i);
    assert.equal(await h.report("gw0", device, 100 + i, 2048, 7, text), "grant,0,2048");
    saved.set(100 + i, text);
  }
  return saved;
}

async function wrapVersions(store: ControllerStore): Promise<number[]> {
  const rows = await store.db.query<{ v: number }>(
    "SELECT DISTINCT wrap_version AS v FROM devices WHERE wrap_version IS NOT NULL UNION SELECT wrap_version FROM responder_keys UNION SELECT wrap_version FROM device_sessions ORDER BY 1");
  return rows.map((r) => r.v);
}

for (const b of BACKENDS) {
  describe(`master-key rotation (${b.name})`, function () {
    this.timeout(120_000);

    it("re-wraps every row in batches while lookups and provisioning keep working, then retires the old key", async () => {
      const k1 = MasterKey.generate();
      const dbo = await b.options();
      let store = await openControllerStore({ db: dbo, masterKeys: [k1] });
      const psk = new Map<string, string>();
      await provisionPsk(store, 30, psk);
      await store.registry.provision({ board: "esp32-espruino" }); // creates the responder key
      const responderSecret = hex((await store.registry.responderKey()).secret);

      let stop = false;
      let lookups = 0;
      let provisioned = 0;
      const failures: string[] = [];
      // Each loop turn yields to the event loop: PGlite answers through microtasks alone, so a loop that never
      // yields would starve every timer (the rotation's pauses, mocha's timeout).
      const turn = () => new Promise((r) => setImmediate(r));
      const reader = (async () => {
        for (let i = 0; !stop; i++, await turn()) {
          const ids = [...psk.keys()];
          const id = ids[i % ids.length];
          try {
            const ks = await store.registry.lookupPsk(id);
            if (ks === undefined || hex(ks.current) !== psk.get(id)) failures.push(`lookupPsk ${id} wrong`);
            const m = await store.registry.findPskByPid(pidOf(Buffer.from(psk.get(id)!, "hex")));
            if (m === undefined || m.deviceId !== id) failures.push(`findPskByPid ${id} wrong`);
            if (hex((await store.registry.responderKey()).secret) !== responderSecret) failures.push("responder key changed");
            lookups++;
          } catch (e) {
            failures.push(String(e));
          }
        }
      })();
      const writer = (async () => {
        for (; !stop; await turn()) {
          try {
            await provisionPsk(store, 1, psk);
            provisioned++;
          } catch (e) {
            failures.push("provision: " + String(e));
          }
        }
      })();

      const lookupsAtBatch: number[] = [];
      const k2 = MasterKey.generate();
      const result = await store.rotateMasterKey(k2, {
        batchSize: 4,
        onStep: async (step) => {
          if (step !== "rewrapped") return;
          lookupsAtBatch.push(lookups);
          await new Promise((r) => setTimeout(r, 5)); // room for the others between batches
        },
      });
      stop = true;
      await Promise.all([reader, writer]);

      assert.deepEqual(failures, []);
      assert.equal(result.version, 2);
      assert.equal(result.fingerprint, k2.fingerprint);
      assert.deepEqual(result.retired, [1]);
      assert.ok(result.rewrapped >= 31, `rewrapped ${result.rewrapped}`);
      assert.ok(lookupsAtBatch.length >= 8, "several batches");
      assert.ok(lookupsAtBatch[lookupsAtBatch.length - 1] > lookupsAtBatch[0], "lookups went on during the rotation");
      assert.ok(provisioned > 0, "provisioning went on during the rotation");
      assert.deepEqual(await wrapVersions(store), [2]);
      const mk = await store.db.query<{ version: number; retired: boolean }>(
        "SELECT version, retired_at IS NOT NULL AS retired FROM master_keys ORDER BY version");
      assert.deepEqual(mk, [{ version: 1, retired: true }, { version: 2, retired: false }]);
      assert.deepEqual(store.keyring.versions(), [2]);
      await store.close();

      // The old key alone no longer opens the store; the new one does, and every key is intact.
      await assert.rejects(openControllerStore({ db: dbo, masterKeys: [k1] }), /master key v2 \(fingerprint [0-9a-f]+\) is needed/);
      store = await openControllerStore({ db: dbo, masterKeys: [k2] });
      try {
        for (const [id, key] of psk) assert.equal(hex((await store.registry.lookupPsk(id))!.current), key);
        assert.equal(hex((await store.registry.responderKey()).secret), responderSecret);
      } finally {
        await store.close();
      }
    });

    it("a rotation stopped half-way is finished at the next start, given both keys", async () => {
      const dbo = await b.options();
      const k1 = MasterKey.generate(), k2 = MasterKey.generate();
      let store = await openControllerStore({ db: dbo, masterKeys: [k1] });
      const psk = new Map<string, string>();
      await provisionPsk(store, 10, psk);
      const sessions = await handOver(store, [...psk.keys()]);
      let batches = 0;
      await assert.rejects(store.rotateMasterKey(k2, { batchSize: 3, onStep: (step) => { if (step === "rewrapped" && ++batches === 2) throw new Error("power cut"); } }), /power cut/);
      assert.deepEqual(await wrapVersions(store), [1, 2]);
      // Mixed rows read fine meanwhile.
      for (const [id, key] of psk) assert.equal(hex((await store.registry.lookupPsk(id))!.current), key);
      await store.close();

      await assert.rejects(openControllerStore({ db: dbo, masterKeys: [k2] }), /master key v1 \(fingerprint [0-9a-f]+\) is needed/);
      store = await openControllerStore({ db: dbo, masterKeys: [k1, k2] });
      try {
        assert.deepEqual(await wrapVersions(store), [2]);
        assert.deepEqual(store.keyring.versions(), [2]);
        for (const [id, key] of psk) assert.equal(hex((await store.registry.lookupPsk(id))!.current), key);
        // The handed-over sessions were re-wrapped too, and resume with their keys intact.
        for (const [spi, text] of sessions) assert.equal(await handoffOf(store).fetch("gw1", spi), `resume,2048,4096,7,${text}`);
      } finally {
        await store.close();
      }
    });

    it("key files go through a pending name: one the database never recorded is ignored (and kept), one it recorded becomes a key file", async () => {
      const dbo = await b.options();
      const dir = new MasterKeyDir(mkdtempSync(join(tmpdir(), "sesame-keydir-")));
      const sink = memorySink();
      const log = Logger.create({ level: "info", stream: sink });
      try {
        // First start with nothing but a staged key: the database records it, the file becomes a key file.
        const k1 = MasterKey.generate();
        dir.stage(k1);
        let store = await openControllerStore({ db: dbo, masterKeys: { dir: dir.path, env: {} }, log });
        assert.deepEqual(readdirSync(dir.path), [`master-${k1.fingerprint}.key`]);
        const psk = new Map<string, string>();
        await provisionPsk(store, 5, psk);
        await store.close();

        // Killed after staging, before the database heard of the key: ignored with a warning, left in place.
        const k2 = MasterKey.generate();
        dir.stage(k2);
        store = await openControllerStore({ db: dbo, masterKeys: { dir: dir.path, env: {} }, log });
        assert.deepEqual(store.keyring.versions(), [1]);
        await store.close();
        assert.ok(existsSync(dir.pendingFile(k2.fingerprint)));
        assert.ok(sink.records().some((r) => r.msg === "pending master key file ignored: this database never recorded it (a rotation stopped before it began); delete it once no database needs it"));

        // Killed after the version committed, before the rename: the next start renames it and finishes the rotation.
        const db = await openDb(dbo);
        assert.equal(await recordMasterKey(db, k2), 2);
        await db.close();
        store = await openControllerStore({ db: dbo, masterKeys: { dir: dir.path, env: {} }, log });
        try {
          assert.deepEqual(readdirSync(dir.path).sort(), [`master-${k1.fingerprint}.key`, `master-${k2.fingerprint}.key`].sort());
          assert.deepEqual(store.keyring.versions(), [2]);
          assert.deepEqual(await wrapVersions(store), [2]);
          for (const [id, key] of psk) assert.equal(hex((await store.registry.lookupPsk(id))!.current), key);
        } finally {
          await store.close();
        }
      } finally {
        rmSync(dir.path, { recursive: true, force: true });
      }
    });

    it("a wrapped key moved to another device's row does not unwrap (AAD = device id + version)", async () => {
      const store = await openControllerStore({ db: await b.options(), masterKeys: [MasterKey.generate()] });
      try {
        const a = await store.registry.provision({ board: "puckjs" });
        const c = await store.registry.provision({ board: "puckjs" });
        await store.db.query(
          "UPDATE devices SET wrapped_key = (SELECT wrapped_key FROM devices WHERE id = $1) WHERE id = $2", [a.device.id, c.device.id]);
        await assert.rejects(store.registry.lookupPsk(c.device.id), MasterKeyError);
        assert.equal(hex((await store.registry.lookupPsk(a.device.id))!.current), parseFields(a.config)["psk"]);
      } finally {
        await store.close();
      }
    });

    it("a rotation to a key the database already knows is refused", async () => {
      const k = MasterKey.generate();
      const store = await openControllerStore({ db: await b.options(), masterKeys: [k] });
      try {
        await assert.rejects(store.rotateMasterKey(k), /already version 1; a rotation needs a new key/);
      } finally {
        await store.close();
      }
    });

    it("a master key the database does not know is refused at start", async () => {
      const dbo = await b.options();
      const store = await openControllerStore({ db: dbo, masterKeys: [MasterKey.generate()] });
      await store.close();
      await assert.rejects(openControllerStore({ db: dbo, masterKeys: [MasterKey.generate()] }), /is not known to this database \(known: v1 [0-9a-f]+\)/);
      await assert.rejects(openControllerStore({ db: dbo, masterKeys: [] }), /no master key: set SESAME_MASTER_KEY/);
    });
  });
}
