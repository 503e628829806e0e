// MQTT application credentials: the admin API that gives them out (create, list, revoke, the Mosquitto export),
// on both database backends, and the password hashes in Mosquitto's own format (checked against the real
// mosquitto_passwd).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAdminApi, type AdminApi } from "../../../host/controller/admin";
import { MasterKey } from "../../../host/controller/masterkey";
import { hashMqttPassword, newMqttPassword, verifyMqttPassword } from "../../../host/controller/mqtt-password";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { generateToken } from "../../../host/controller/tokens";
import { BACKENDS, stopSharedPostgres } from "./backends";

after(stopSharedPostgres);

describe("MQTT passwords in Mosquitto's format", () => {
  it("verifies a hash the real mosquitto_passwd made, and makes hashes of the same shape", () => {
    const dir = mkdtempSync(join(tmpdir(), "sesame-passwd-"));
    try {
      const file = join(dir, "passwd");
      execFileSync("mosquitto_passwd", ["-c", "-b", file, "alice", "correct horse"]);
      const theirs = readFileSync(file, "utf8").trim().split(":")[1];
      assert.match(theirs, /^\$7\$101\$/);
      assert.equal(verifyMqttPassword("correct horse", theirs), true);
      assert.equal(verifyMqttPassword("correct hors", theirs), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const password = newMqttPassword();
    assert.ok(Buffer.from(password, "base64url").length >= 16, "at least 128 random bits");
    const ours = hashMqttPassword(password);
    const [, , iterations, salt, hash] = ours.split("$");
    assert.deepEqual([iterations, Buffer.from(salt, "base64").length, Buffer.from(hash, "base64").length], ["101", 12, 64]);
    assert.equal(verifyMqttPassword(Buffer.from(password), ours), true);
    assert.notEqual(hashMqttPassword(password), ours, "a new salt each time");
    for (const bad of ["", "$6$abc$def", "$7$101$$", "plain"]) assert.equal(verifyMqttPassword(password, bad), false);
  });
});

for (const b of BACKENDS) {
  describe(`MQTT credentials over the admin API (${b.name})`, function () {
    this.timeout(120_000);
    const ops = generateToken();
    let store: ControllerStore;
    let api: AdminApi;
    let base: string;
    const logs: string[] = [];
    const revoked: string[] = [];

    before(async () => {
      store = await openControllerStore({ db: await b.options(), masterKeys: [MasterKey.generate()] });
      store.mqtt.onRevoke((u) => void revoked.push(u));
      api = createAdminApi({ store, tokens: [{ id: "ops", sha256: ops.sha256 }], log: (e) => void logs.push(JSON.stringify(e)) });
      base = `http://127.0.0.1:${(await api.listen(0)).port}`;
    });
    after(async () => {
      await api.close();
      await store.close();
    });

    async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
      const headers: Record<string, string> = { authorization: `Bearer ${ops.token}` };
      if (body !== undefined) headers["content-type"] = "application/json";
      const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as Record<string, any> };
    }

    it("create shows the password once; list, audit and logs never show it nor its hash; revoke ends logins", async () => {
      const a = (await store.registry.provision({ board: "puckjs" })).device.id;
      const made = await call("POST", "/v1/mqtt/credentials", { name: "dashboard", devices: [a], access: "read" });
      assert.equal(made.status, 201);
      const { credential, password } = made.body;
      assert.match(credential.username, /^app-[0-9a-f]{12}$/);
      assert.deepEqual({ ...credential, createdAt: undefined }, { username: credential.username, name: "dashboard", devices: [a], access: "read", createdAt: undefined, revokedAt: null });
      const who = await store.mqtt.login(credential.username, Buffer.from(password));
      assert.deepEqual(who, { kind: "application", username: credential.username, access: "read", devices: new Set([a]) });
      assert.equal(await store.mqtt.login(credential.username, Buffer.from(password + "x")), undefined);

      const all = await call("POST", "/v1/mqtt/credentials", { devices: "all", access: "both" });
      const list = await call("GET", "/v1/mqtt/credentials");
      assert.deepEqual(list.body.credentials.map((c: { username: string }) => c.username), [credential.username, all.body.credential.username]);
      const hash = (await store.db.query<{ password_hash: string }>("SELECT password_hash FROM mqtt_credentials WHERE username = $1", [credential.username]))[0].password_hash;
      assert.ok(verifyMqttPassword(password, hash), "only the hash is stored");

      const out = await call("POST", `/v1/mqtt/credentials/${credential.username}/revoke`);
      assert.equal(out.status, 200);
      assert.ok(out.body.credential.revokedAt);
      assert.deepEqual(revoked, [credential.username]);
      assert.equal(await store.mqtt.login(credential.username, Buffer.from(password)), undefined);
      assert.deepEqual(await store.mqtt.revokedAmong([credential.username, all.body.credential.username, "app-000000000000"]), [credential.username, "app-000000000000"]);
      assert.deepEqual((await call("GET", "/v1/mqtt/credentials?revoked=false")).body.credentials.map((c: { username: string }) => c.username), [all.body.credential.username]);

      const audit = await store.audit.list({ limit: 20 });
      const actions = audit.map((r) => r.action);
      for (const a of ["mqtt-credential.create", "mqtt-credential.list", "mqtt-credential.revoke"]) assert.ok(actions.includes(a), a);
      const everything = JSON.stringify(audit) + JSON.stringify(list.body) + logs.join("\n");
      for (const secret of [password, all.body.password, hash, "$7$"]) assert.ok(!everything.includes(secret), "a password or hash leaked into the list, the audit log or the logs");
    });

    it("refuses what it cannot honour, naming the field", async () => {
      const cases: [unknown, RegExp][] = [
        [{ devices: "all" }, /access: required/],
        [{ devices: "all", access: "write" }, /access: required; "read"/],
        [{ access: "read" }, /devices: required/],
        [{ devices: [], access: "read" }, /devices: required/],
        [{ devices: ["not-hex"], access: "read" }, /device id: must be 8-64 lowercase hex/],
        [{ devices: [7], access: "read" }, /each entry must be a device id/],
        [{ devices: ["00112233445566778899aabbccddeeff"], access: "read" }, /devices: not registered: 00112233445566778899aabbccddeeff/],
        [{ devices: "all", access: "read", name: "a\nb" }, /name: must be a string/],
        [{ devices: "all", access: "read", password: "mine" }, /unknown field "password"/],
      ];
      for (const [body, why] of cases) {
        const r = await call("POST", "/v1/mqtt/credentials", body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.match(r.body.message, why);
      }
      assert.equal((await call("POST", "/v1/mqtt/credentials/app-0123456789ab/revoke")).status, 404);
      assert.equal((await call("POST", "/v1/mqtt/credentials/bob/revoke")).status, 400);
    });

    it("exports the live credentials as a Mosquitto password file and ACL", async () => {
      const a = (await store.registry.provision({ board: "puckjs" })).device.id;
      const scoped = (await call("POST", "/v1/mqtt/credentials", { name: "porch light", devices: [a], access: "command" })).body.credential.username;
      const r = await call("GET", "/v1/mqtt/mosquitto");
      assert.equal(r.status, 200);
      const lines: string[] = r.body.passwordFile.trim().split("\n");
      assert.ok(lines.every((l) => /^app-[0-9a-f]{12}:\$7\$101\$[^$]+\$[^$]+$/.test(l)), r.body.passwordFile);
      assert.ok(lines.some((l) => l.startsWith(`${scoped}:`)));
      assert.ok(r.body.aclFile.includes(`# porch light: command, 1 device(s)\nuser ${scoped}\ntopic write sesame/devices/${a}/down\n`), r.body.aclFile);
      assert.ok(r.body.aclFile.includes("topic read sesame/devices/+/up\ntopic read sesame/devices/+/events\ntopic write sesame/devices/+/down\n"));
    });
  });
}
