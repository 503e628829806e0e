// The Mosquitto example the repository ships (deploy/mosquitto/: mosquitto.conf and acl), run as an operator
// would: a real Mosquitto with a TLS listener (a CA and server certificate made here with the openssl CLI), the
// controller's user made with mosquitto_passwd, the applications' users exported from sesame's credentials,
// and the controller's Delivery logging in by URL and verifying the broker against the CA.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Delivery } from "../../../host/controller/mqtt";
import { MasterKey } from "../../../host/controller/masterkey";
import { newMqttPassword } from "../../../host/controller/mqtt-password";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { Mosquitto } from "../../harness/mosquitto";
import { appClient, connackCode, type AppClient, type Login } from "../../harness/mqtt-clients";
import { until } from "../../harness/until";

const DEPLOY = join(import.meta.dirname, "../../../deploy/mosquitto");

/** A CA and a server certificate for 127.0.0.1, as deploy/mosquitto/README.md makes them. */
function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sesame-test-ca", "-keyout", "ca.key", "-out", "ca.crt");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr");
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt");
}

describe("the shipped Mosquitto example: TLS, passwords and the ACL on a real Mosquitto", function () {
  this.timeout(60_000);
  let store: ControllerStore;
  let broker: Mosquitto;
  let certs: string;
  let ca: Buffer;
  let url: string;
  let a: string, b: string;
  const controller: Login = { username: "sesame-controller", password: newMqttPassword() };
  const logins: Record<"readsA" | "readsAll" | "commands", Login> = {} as never;
  const open: AppClient[] = [];
  const deliveries: Delivery[] = [];

  before(async () => {
    store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
    a = (await store.registry.provision({ board: "puckjs" })).device.id;
    b = (await store.registry.provision({ board: "puckjs" })).device.id;
    for (const [k, devices, access] of [["readsA", [a], "read"], ["readsAll", "all", "read"], ["commands", "all", "command"]] as const) {
      const made = await store.mqtt.create({ name: k, devices: devices === "all" ? "all" : [...devices], access });
      logins[k] = { username: made.credential.username, password: made.password };
    }
    const exported = await store.mqtt.mosquittoFiles();
    certs = mkdtempSync(join(tmpdir(), "sesame-certs-"));
    makeCertificates(certs);
    ca = readFileSync(join(certs, "ca.crt"));
    broker = await Mosquitto.start(undefined, (port, dir) => {
      // The operator's steps: the controller's user by mosquitto_passwd, the applications' from the export.
      execFileSync("mosquitto_passwd", ["-c", "-b", join(dir, "passwd"), controller.username, controller.password]);
      writeFileSync(join(dir, "passwd"), readFileSync(join(dir, "passwd"), "utf8") + exported.passwordFile);
      writeFileSync(join(dir, "acl"), `${readFileSync(join(DEPLOY, "acl"), "utf8")}\n${exported.aclFile}`);
      const conf = readFileSync(join(DEPLOY, "mosquitto.conf"), "utf8")
        .replaceAll("/etc/mosquitto/sesame/certs/", `${certs}/`)
        .replaceAll("/etc/mosquitto/sesame/", `${dir}/`)
        .replace(/^listener 8883$/m, `listener ${port} 127.0.0.1`);
      assert.ok(conf.includes(`listener ${port} 127.0.0.1`) && !conf.includes("/etc/"), "the shipped config changed shape");
      return conf;
    });
    url = `mqtts://127.0.0.1:${broker.port}`;
  });
  // Each test's controller leaves: controllers share the commands' subscription ($share/sesame/...), so one
  // still connected from an earlier test would take half of this test's commands.
  afterEach(async () => {
    for (const d of deliveries.splice(0)) await d.stop({ drainMs: 100 });
  });
  after(async () => {
    for (const c of open) c.end(true);
    await broker?.dispose();
    await store?.close();
    rmSync(certs, { recursive: true, force: true });
  });

  async function app(login: Login, ...filters: string[]): Promise<AppClient> {
    const c = await appClient(url, login, { ca });
    open.push(c);
    for (const f of filters) await c.subscribeAsync(f, { qos: 1 });
    return c;
  }

  async function delivery(commands: [string, number[]][] = [], tls: { ca?: Buffer } = { ca }): Promise<Delivery> {
    const u = new URL(url);
    u.username = controller.username;
    u.password = controller.password;
    const d = new Delivery({ broker: { kind: "external", url: u.toString(), tls }, reconnectMs: 100, onCommand: (id, p) => void commands.push([id, [...p]]) });
    deliveries.push(d);
    await d.start();
    return d;
  }

  it("refuses anonymous clients and wrong passwords; takes sesame's own password hashes", async () => {
    assert.equal(await connackCode(url, undefined, { ca }), 5);
    assert.equal(await connackCode(url, { ...logins.readsAll, password: "wrong" }, { ca }), 5);
    assert.equal(await connackCode(url, logins.readsAll, { ca }), 0, "a password hashed by sesame, checked by Mosquitto");
  });

  it("the controller verifies the broker against the CA: without it, it refuses to connect", async () => {
    await assert.rejects(delivery([], {}), /has a certificate this controller does not trust: self-signed certificate in certificate chain; give the CA that signed it with --mqtt-ca/);
  });

  it("the controller publishes readings; a scoped application gets its device's and no other's", async () => {
    const d = await delivery();
    // Mosquitto grants the wildcard and B's own topic, then checks every message against the ACL.
    const scoped = await app(logins.readsA, "sesame/devices/+/up", `sesame/devices/${b}/up`);
    const all = await app(logins.readsAll, "sesame/devices/+/up");
    d.publishUplink({ device: b, seq: 1, payload: new Uint8Array([1]) });
    d.publishUplink({ device: a, seq: 2, payload: new Uint8Array([2]) });
    await until(() => scoped.got.length >= 1 && all.got.length >= 2, "the readings");
    // B's reading went out first: had it been forwarded, it would be here before A's.
    assert.deepEqual(scoped.got.map((m) => m.topic), [`sesame/devices/${a}/up`]);
    assert.deepEqual(all.got.map((m) => JSON.parse(m.body).seq), [1, 2]);
  });

  it("an application can read but not publish a reading; a command-scoped application's command reaches onCommand", async () => {
    const commands: [string, number[]][] = [];
    const d = await delivery(commands);
    const reader = await app(logins.readsAll, "sesame/devices/+/up");
    // Mosquitto acknowledges a publish its ACL denies and drops it (MQTT 3.1.1 has no way to say no).
    await reader.publishAsync(`sesame/devices/${a}/up`, JSON.stringify({ device: a, seq: 99, payload: "ZmFrZQ==" }), { qos: 1 });
    await reader.publishAsync(`sesame/devices/${a}/down`, JSON.stringify({ payload: "AQ==" }), { qos: 1 });
    d.publishUplink({ device: a, seq: 5, payload: new Uint8Array([5]) });
    await until(() => reader.got.length >= 1, "the real reading");
    assert.deepEqual(reader.got.map((m) => JSON.parse(m.body).seq), [5], "the forged reading reached a subscriber");
    const commander = await app(logins.commands);
    await commander.publishAsync(`sesame/devices/${a}/down`, JSON.stringify({ payload: "AgE=" }), { qos: 1 });
    await until(() => commands.length >= 1, "the command");
    assert.deepEqual(commands, [[a, [2, 1]]], "only the command-scoped application's command arrives");
  });
});
