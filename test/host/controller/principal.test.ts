// Applications' MQTT logins as scoped admin API principals (the console's second way in): the devices and
// actions their access gives, nothing for a wrong, revoked or malformed login, and a bound on the checks a
// second, since each costs a database read and a PBKDF2.
import assert from "node:assert/strict";
import { MasterKey } from "../../../host/controller/masterkey";
import { applicationCredentials, adminCredentials, firstOf } from "../../../host/controller/principal";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { generateToken } from "../../../host/controller/tokens";

describe("principal: application credentials", function () {
  this.timeout(60_000);
  let store: ControllerStore;
  before(async () => (store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] })));
  after(() => store.close());

  const login = (s: ControllerStore) => async (u: string, p: Uint8Array) => {
    const id = await s.mqtt.login(u, p);
    return id?.kind === "application" ? id : undefined;
  };

  it("gives an application its devices and the actions of its access, and nothing for a bad login", async () => {
    const a = (await store.registry.provision({ board: "puckjs" })).device.id;
    const reader = await store.mqtt.create({ devices: [a], access: "read" });
    const commander = await store.mqtt.create({ devices: "all", access: "command" });
    const admin = generateToken();
    const creds = firstOf(adminCredentials([{ id: "ops", sha256: admin.sha256 }]), applicationCredentials(login(store)));
    const r = (await creds(`${reader.credential.username}:${reader.password}`))!;
    assert.equal(r.actor, reader.credential.username);
    assert.deepEqual(r.devices, new Set([a]));
    assert.ok(r.actions !== "all" && r.actions.has("fleet.list") && !r.actions.has("device.command") && !r.actions.has("device.provision"));
    const c = (await creds(`${commander.credential.username}:${commander.password}`))!;
    assert.equal(c.devices, "all");
    assert.ok(c.actions !== "all" && c.actions.has("device.command") && !c.actions.has("fleet.list"));
    assert.equal((await creds(admin.token))!.actions, "all");
    assert.equal(await creds(`${reader.credential.username}:wrong`), undefined);
    assert.equal(await creds(`${reader.credential.username}`), undefined);
    assert.equal(await creds(`app-zz:${reader.password}`), undefined);
    await store.mqtt.revoke(reader.credential.username);
    assert.equal(await creds(`${reader.credential.username}:${reader.password}`), undefined);
  });

  it("checks at most perSecond logins a second", async () => {
    const app = await store.mqtt.create({ devices: "all", access: "read" });
    let t = 5_000, calls = 0;
    const counted = async (u: string, p: Uint8Array) => (calls++, login(store)(u, p));
    const creds = applicationCredentials(counted, 3, () => t);
    const bad = `${app.credential.username}:nope`;
    for (let i = 0; i < 10; i++) await creds(bad);
    assert.equal(calls, 3, "the login check ran three times in the second");
    assert.equal(await creds(`${app.credential.username}:${app.password}`), undefined, "refused until the next second");
    t += 1000;
    assert.ok(await creds(`${app.credential.username}:${app.password}`));
  });
});
