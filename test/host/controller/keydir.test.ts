// Keys never stranded: a real `sesame controller` process holding a few hundred wrapped keys is killed with -9
// at each step of a master-key rotation (the step's own info line is the signal; --rotation-pause-ms holds
// the process there), then started again with nothing but its key directory. It must start, and every row
// must unwrap. The state the kill left is checked too, so each kill is known to have hit its step.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseFields } from "../../../firmware/runtime/config";
import { hex } from "../../../host/controller/credentials";
import { openDb } from "../../../host/controller/db/open";
import { MasterKeyDir } from "../../../host/controller/keydir";
import { MasterKey } from "../../../host/controller/masterkey";
import type { RotationStep } from "../../../host/controller/rotation";
import { openControllerStore } from "../../../host/controller/store";
import { generateToken } from "../../../host/controller/tokens";
import { startControllerProcess, type ControllerProcess } from "../../harness/controller-process";

const PSK_DEVICES = 300;
const BATCH = 100;

type State = { files: string[]; versions: { version: number; fingerprint: string; retired: boolean }[]; rows: Record<number, number> };

describe("master-key rotation in a controller process killed with -9 at each step", function () {
  this.timeout(600_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-rotation-kill-"));
  const keyDir = new MasterKeyDir(path.join(dir, "keys"));
  const dataDir = path.join(dir, "db");
  const token = generateToken();
  // The key directory alone: no SESAME_MASTER_KEY from the environment the tests run in.
  const env: NodeJS.ProcessEnv = { ...process.env, SESAME_LOG_LEVEL: "info" };
  delete env.SESAME_MASTER_KEY;
  const psk = new Map<string, string>();
  let responderSecret = "";
  let running: ControllerProcess | undefined;

  const start = () => startControllerProcess({ dir, tokens: `t:${token.sha256}`, env, args: ["--rotation-batch", String(BATCH), "--rotation-pause-ms", "1000"] });

  /** What the database and the key directory hold, read without opening the store (which would finish a rotation). */
  async function state(): Promise<State> {
    const db = await openDb({ dataDir });
    try {
      const versions = await db.query<{ version: number; fingerprint: string; retired: boolean }>(
        "SELECT version, fingerprint, retired_at IS NOT NULL AS retired FROM master_keys ORDER BY version");
      const counts = await db.query<{ v: number; n: number }>(
        "SELECT wrap_version AS v, count(*)::int AS n FROM (SELECT wrap_version FROM devices WHERE wrap_version IS NOT NULL UNION ALL SELECT wrap_version FROM responder_keys) w GROUP BY 1");
      return { files: fs.readdirSync(keyDir.path).sort(), versions, rows: Object.fromEntries(counts.map((c) => [c.v, c.n])) };
    } finally {
      await db.close();
    }
  }

  /** Opens the store on the key directory alone and unwraps every row. */
  async function everyRowUnwraps(): Promise<number[]> {
    const store = await openControllerStore({ db: { dataDir }, masterKeys: { dir: keyDir.path, env: {} } });
    try {
      for (const [id, key] of psk) assert.equal(hex((await store.registry.lookupPsk(id))!.current), key, `device ${id}`);
      assert.equal(hex((await store.registry.responderKey()).secret), responderSecret);
      return store.keyring.versions();
    } finally {
      await store.close();
    }
  }

  before(async () => {
    keyDir.stage(MasterKey.generate());
    const store = await openControllerStore({ db: { dataDir }, masterKeys: { dir: keyDir.path, env: {} } });
    try {
      for (let i = 0; i < PSK_DEVICES; i++) {
        const p = await store.registry.provision({ board: "puckjs" });
        psk.set(p.device.id, parseFields(p.config).psk);
      }
      await store.registry.provision({ board: "esp32-espruino" }); // a dh device: the responder's wrapped secret
      responderSecret = hex((await store.registry.responderKey()).secret);
    } finally {
      await store.close();
    }
  });
  afterEach(async () => {
    if (running?.proc.exitCode === null) await running.kill();
    running = undefined;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /**
   * Starts a rotation (with a key file, or generating one), kills the process when the log shows `step`
   * (with `facts`), or once the call has answered when `step` is undefined; returns the new key's fingerprint.
   */
  async function rotateAndKill(source: "keyFile" | "generate", step: RotationStep | undefined, facts: Record<string, unknown> = {}): Promise<string> {
    running = await start();
    let body: unknown = { generate: true };
    let fingerprint: string | undefined;
    if (source === "keyFile") {
      const k = MasterKey.generate();
      const file = path.join(dir, `incoming-${k.fingerprint}.key`);
      k.writeTo(file);
      body = { keyFile: file };
      fingerprint = k.fingerprint;
    }
    const call = fetch(`${running.admin}/v1/master-key/rotate`, {
      method: "POST", headers: { authorization: `Bearer ${token.token}`, "content-type": "application/json" }, body: JSON.stringify(body),
    });
    if (step === undefined) {
      const r = await call;
      assert.equal(r.status, 200, await r.clone().text());
      fingerprint = ((await r.json()) as { fingerprint: string }).fingerprint;
    } else {
      call.catch(() => undefined); // the process dies under it
      await running.waitFor((r) => r.msg === "master-key rotation" && r.fields?.step === step
        && Object.entries(facts).every(([k, v]) => r.fields?.[k] === v), `rotation step ${step}`);
      fingerprint ??= String(running.records.find((r) => r.fields?.step === "staged")!.fields!.fingerprint);
    }
    await running.kill();
    return fingerprint;
  }

  /** Starts the controller again on the key directory alone; it must come up (and finish any rotation). */
  async function restart(): Promise<ControllerProcess> {
    running = await start();
    const r = await fetch(`${running.admin}/v1/devices?revoked=false`, { headers: { authorization: `Bearer ${token.token}` } });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { devices: unknown[] }).devices.length, PSK_DEVICES + 1);
    const c = running;
    assert.equal(await c.stop(), 0);
    return c;
  }

  const version = (s: State, fp: string) => s.versions.find((v) => v.fingerprint === fp);
  const active = (s: State) => s.versions.filter((v) => !v.retired).map((v) => v.version);

  it("killed right after the key file is written, before the database records it: the pending file is ignored", async () => {
    const before = await state();
    const fp = await rotateAndKill("keyFile", "staged");
    const s = await state();
    assert.ok(s.files.includes(`master-${fp}.key.pending`), s.files.join(" "));
    assert.equal(version(s, fp), undefined);
    assert.deepEqual(s.versions, before.versions);
    const c = await restart();
    assert.ok(c.records.some((r) => r.msg.startsWith("pending master key file ignored") && String(r.fields?.file).endsWith(`master-${fp}.key.pending`)));
    assert.deepEqual(await everyRowUnwraps(), active(before));
  });

  it("killed after the version is recorded, before its file is renamed: the start renames it and finishes the rotation", async () => {
    const fp = await rotateAndKill("generate", "recorded");
    const s = await state();
    assert.ok(s.files.includes(`master-${fp}.key.pending`) && !s.files.includes(`master-${fp}.key`), s.files.join(" "));
    const v = version(s, fp)!.version;
    assert.equal(s.rows[v], undefined, "nothing wrapped under it yet");
    await restart();
    const after = await state();
    assert.ok(after.files.includes(`master-${fp}.key`) && !after.files.includes(`master-${fp}.key.pending`));
    assert.deepEqual(after.rows, { [v]: PSK_DEVICES + 1 });
    assert.deepEqual(await everyRowUnwraps(), [v]);
  });

  it("killed mid re-wrap (after the first batch of 100): the start finishes it", async () => {
    const fp = await rotateAndKill("keyFile", "rewrapped", { rows: BATCH });
    const s = await state();
    const v = version(s, fp)!.version;
    assert.ok(s.files.includes(`master-${fp}.key`));
    assert.equal(s.rows[v], BATCH);
    assert.equal(Object.values(s.rows).reduce((a, b) => a + b), PSK_DEVICES + 1);
    await restart();
    assert.deepEqual((await state()).rows, { [v]: PSK_DEVICES + 1 });
    assert.deepEqual(await everyRowUnwraps(), [v]);
  });

  it("killed just before the old version is retired: the start retires it", async () => {
    const fp = await rotateAndKill("generate", "retiring");
    const s = await state();
    const v = version(s, fp)!.version;
    assert.deepEqual(s.rows, { [v]: PSK_DEVICES + 1 });
    assert.ok(active(s).length === 2, "the old version is not retired yet");
    await restart();
    assert.deepEqual(active(await state()), [v]);
    assert.deepEqual(await everyRowUnwraps(), [v]);
  });

  it("killed after the rotation answered: the key directory alone opens everything", async () => {
    const fp = await rotateAndKill("generate", undefined);
    const s = await state();
    const v = version(s, fp)!.version;
    assert.deepEqual(active(s), [v]);
    await restart();
    assert.deepEqual(await everyRowUnwraps(), [v]);
    // Every key file is owner-only; no temporary file is left behind.
    for (const n of fs.readdirSync(keyDir.path)) {
      assert.match(n, /^master-[0-9a-f]{32}\.key(\.pending)?$/);
      assert.equal(fs.statSync(path.join(keyDir.path, n)).mode & 0o777, 0o600, n);
    }
  });

  it("with --master-key-dir off (SESAME_MASTER_KEY alone) a rotation is refused, saying what to do instead", async () => {
    const own = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-no-keydir-"));
    try {
      running = await startControllerProcess({
        dir: own, tokens: `t:${token.sha256}`, args: ["--master-key-dir", "off"], env: { ...env, SESAME_MASTER_KEY: hex(Buffer.alloc(32, 7)) },
      });
      const r = await fetch(`${running.admin}/v1/master-key/rotate`, {
        method: "POST", headers: { authorization: `Bearer ${token.token}`, "content-type": "application/json" }, body: JSON.stringify({ generate: true }),
      });
      assert.equal(r.status, 400);
      assert.match(((await r.json()) as { message: string }).message, /^generate: this controller has no master key directory .* Restart the controller with --master-key-dir <dir>/);
      assert.equal(await running.stop(), 0);
      assert.ok(!fs.existsSync(path.join(own, "keys")));
    } finally {
      fs.rmSync(own, { recursive: true, force: true });
    }
  });
});
