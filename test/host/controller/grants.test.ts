// Key grants (host/controller/grants.ts): a device provisioned or rotated through the admin API has its keys at
// the controller's terminate gateways when the call answers, not at the next periodic registry read. Before,
// a board switched on right after provisioning (as `npm start` does) sent its first hello to a gateway that
// did not know it yet: a failed handshake, counted as an error, and a retry seconds later.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import { KeyGrants } from "../../../host/controller/grants";
import { LOOKBACK_MS } from "../../../host/controller/registry-changes";
import { MasterKey } from "../../../host/controller/masterkey";
import { openControllerStore } from "../../../host/controller/store";
import { Gateway } from "../../../host/gateway/gateway";
import { KeyTable } from "../../../host/gateway/keytable";
import { silentLogger } from "../../../host/telemetry/log";
import { BleBoard } from "../../harness/ble-board";
import { recordQueries } from "../../harness/queries";
import { restamp } from "../../harness/restamp";
import { startStack } from "../../harness/stack";
import { until } from "../../harness/until";

/** A POST to the stack's admin API, which must succeed: its answer. */
async function postAdmin(s: { ports: { admin: number }; adminToken: string }, path: string, body: unknown): Promise<{ device: { id: string }; config: string }> {
  const r = await fetch(`http://127.0.0.1:${s.ports.admin}${path}`, {
    method: "POST", headers: { authorization: `Bearer ${s.adminToken}`, "content-type": "application/json" }, body: JSON.stringify(body),
  });
  assert.ok(r.ok, `${path}: ${r.status} ${await r.clone().text()}`);
  return (await r.json()) as { device: { id: string }; config: string };
}

/** The periodic read of the registry is an hour away: only the immediate grant can bring the keys. */
const NO_REFRESH = { refreshMs: 3_600_000 };

describe("controller: key grants follow the admin API at once", function () {
  this.timeout(60_000);

  it("a device provisioned through the admin API is at the gateway, and its first hello gets a session", async () => {
    const s = await startStack("terminate", undefined, NO_REFRESH);
    let board: BleBoard | undefined;
    try {
      await until(() => s.controller.stats.grantsSent > 0, "the gateway connected and got the responder's grant");
      const post = (path: string, body: unknown) => postAdmin(s, path, body);
      const p = await post("/v1/devices", { board: "puckjs" });
      await until(() => s.gateway.keys.has(p.device.id), "the provisioned device's keys at the gateway");
      const first = s.gateway.keys.grant(p.device.id);

      s.gateway.removeAllListeners("output");
      board = new BleBoard("granted", p.config + ";rto=400;tries=3;retry=1000");
      const link = {
        attached: true, input: (l: string, b: Uint8Array) => s.gateway.input(l, b), connected: (l: string) => s.gateway.connected(l),
        disconnected: () => {}, takeOutput: () => s.gateway.takeOutput(),
      };
      board.attach(link);
      const b = board;
      const id = b.send(Buffer.from("first"));
      await until(() => {
        for (const o of s.gateway.takeOutput()) if (o.link === b.link) b.hear(o.bytes);
        return b.acknowledged().includes(id);
      }, "the first reading acknowledged");
      assert.equal(b.rt.restarts, 1, "one handshake, on the first hello");
      assert.equal(b.rt.ep.failures, 0, "no hello went unanswered");
      const hs = (await s.gateway.metrics.text()).split("\n").filter((l) => l.startsWith("sesame_handshakes_total"));
      assert.deepEqual(hs, ['sesame_handshakes_total{mode="psk",outcome="ok"} 1'], "the gateway counted one handshake, and no failure");

      // Rotated: the new keys replace the old at the gateway, again without waiting for the periodic read.
      await post(`/v1/devices/${p.device.id}/rotate`, {});
      await until(() => s.gateway.keys.grant(p.device.id) !== "" && s.gateway.keys.grant(p.device.id) !== first, "the rotated keys at the gateway");
    } finally {
      board?.stop();
      await s.close();
    }
  });

  it("the periodic read takes only the rows changed since the last one, looking back for late commits", async () => {
    const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await store.registry.provision({ board: i % 2 ? "puckjs" : "esp32-espruino" })).device.id);
      // As if provisioned an hour ago (the trigger would stamp this update itself).
      const age = (sql: string) => restamp(store.db, sql);
      await age("UPDATE devices SET changed_at = now() - interval '1 hour'");
      const keys = new KeyTable();
      const sent: string[] = [];
      const g = new KeyGrants({ registry: store.registry, keys, responderGrant: "", gateways: () => ["gw"], send: (_gw, device) => sent.push(device) > 0, ending: () => {} });
      await g.refresh();
      assert.deepEqual({ ...g.stats }, { wholeReads: 1, changedReads: 0, rowsRead: 6 });
      assert.equal(sent.length, 6);

      await g.refreshChanged();
      assert.deepEqual({ ...g.stats }, { wholeReads: 1, changedReads: 1, rowsRead: 6 }, "nothing changed: no row read");

      // Revoked, and a psk key evolved: the next read takes those two rows and follows them.
      await store.registry.revoke(ids[0]);
      const before = keys.grant(ids[1]);
      await store.registry.savePsk(ids[1], { current: randomBytes(32), previous: (await store.registry.lookupPsk(ids[1]))!.current });
      sent.length = 0;
      await g.refreshChanged();
      assert.equal(g.stats.rowsRead, 8);
      assert.equal(keys.has(ids[0]), false, "the revoked device is withdrawn");
      assert.notEqual(keys.grant(ids[1]), before, "the evolved keys are granted");
      assert.deepEqual(sent.sort(), [ids[0], ids[1]].sort());

      // A change stamped before the last read but committed after it (a slow transaction) is still seen.
      await age(`UPDATE devices SET generation = generation + 1, changed_at = clock_timestamp() - interval '${LOOKBACK_MS / 2} milliseconds' WHERE id = '${ids[2]}'`);
      sent.length = 0;
      await g.refreshChanged();
      assert.ok(sent.includes(ids[2]), "a late commit within the look-back is granted");
    } finally {
      await store.close();
    }
  });

  it("a whole read takes every psk device's keys in one query, not one query per device", async () => {
    const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
    try {
      const psk: string[] = [];
      for (let i = 0; i < 12; i++) psk.push((await store.registry.provision({ board: "puckjs" })).device.id);
      const dh = (await store.registry.provision({ board: "esp32-espruino" })).device.id;
      await store.registry.revoke(psk[11]);
      const { queries, stop } = recordQueries(store.db);
      const keys = new KeyTable();
      const g = new KeyGrants({ registry: store.registry, keys, responderGrant: "", gateways: () => ["gw"], send: () => true, ending: () => {} });
      await g.refresh();
      stop();
      assert.equal(queries.filter((q) => /wrapped_key/.test(q)).length, 1, `one read of psk keys: ${queries.join(" | ")}`);
      // Each live psk device holds exactly the keys the registry has for it; the revoked one holds none.
      for (const id of psk.slice(0, 11)) {
        const want = (await store.registry.lookupPsk(id))!;
        const many = (await store.registry.lookupPskMany([id])).get(id)!;
        assert.deepEqual(many, want);
        assert.ok(keys.has(id), `psk device ${id} granted`);
      }
      assert.equal(keys.has(psk[11]), false, "the revoked device is not granted");
      assert.ok(keys.has(dh), "the dh device is granted");
      const many = await store.registry.lookupPskMany([...psk, dh, "00000000deadbeef"]);
      assert.deepEqual([...many.keys()].sort(), psk.slice(0, 11).sort(), "only live psk devices have keys");
    } finally {
      await store.close();
    }
  });

  for (const threads of [1, 2])
  it(`a device revoked or rotated while a gateway is away is withdrawn there when it comes back: its old keys and its session go (${threads === 1 ? "one thread" : "device side on two worker threads"})`, async () => {
    const s = await startStack("terminate", undefined, NO_REFRESH);
    // A gateway of the stack's identity behind a cable that can be pulled: while pulled, every connection through it is cut.
    let pulled = false;
    const through = new Set<net.Socket>();
    const cable = net.createServer((a) => {
      if (pulled) return void a.destroy();
      const b = net.connect(s.ports.backbone, "127.0.0.1");
      for (const x of [a, b]) {
        through.add(x);
        x.on("error", () => {});
        x.on("close", () => (a.destroy(), b.destroy(), through.delete(x)));
      }
      a.pipe(b).pipe(a);
    });
    cable.listen(0, "127.0.0.1");
    await once(cable, "listening");
    await s.gateway.close(); // the stack's own: this one takes its place
    const key = s.gatewayKey;
    const gw = new Gateway({
      mode: "terminate", identity: { kid: Buffer.from(key.kid, "hex"), keys: { S: Buffer.from(key.public, "hex"), s: Buffer.from(key.secret, "hex") } },
      controller: { host: "127.0.0.1", port: (cable.address() as net.AddressInfo).port, publicKey: Buffer.from(s.controllerKey, "hex") }, log: silentLogger(), deviceThreads: threads,
    });
    gw.start();
    let board: BleBoard | undefined;
    try {
      const admin = (path: string, body: unknown) => postAdmin(s, path, body);
      const kept = await admin("/v1/devices", { board: "puckjs" });
      const gone = await admin("/v1/devices", { board: "puckjs" });
      const turned = await admin("/v1/devices", { board: "esp32-espruino" });
      const ids = [kept, gone, turned].map((p) => p.device.id);
      await until(() => ids.every((id) => gw.keys.has(id)), "the devices' keys at the gateway");
      // The device to be revoked and the one to be rotated each have a session there.
      const boards = [gone, turned].map((p, i) => new BleBoard(`away-${i}`, p.config + ";rto=400;tries=3;retry=1000" + (i === 1 ? ";slice=64" : "")));
      board = boards[0];
      for (const b of boards) {
        b.attach({ attached: true, input: (l: string, x: Uint8Array) => gw.input(l, x), connected: (l: string) => gw.connected(l), disconnected: () => {}, takeOutput: () => [] });
        const id = b.send(Buffer.from("before"));
        await until(() => {
          for (const o of gw.takeOutput()) for (const c of boards) if (o.link === c.link) c.hear(o.bytes);
          return b.acknowledged().includes(id);
        }, `a reading of ${b.name} acknowledged through the gateway`);
      }
      await until(() => gw.devices!.onlineCount() === 2, "their sessions counted online");
      for (const b of boards) b.stop();
      const oldKeys = gw.keys.grant(turned.device.id);

      // The cable is pulled; one device is revoked and one rotated meanwhile; the cable goes back.
      pulled = true;
      for (const x of through) x.destroy();
      await until(() => !s.controller.server.connected().includes(key.kid), "the controller saw the gateway go");
      await admin(`/v1/devices/${gone.device.id}/revoke`, {});
      await admin(`/v1/devices/${turned.device.id}/rotate`, {});
      assert.ok(gw.keys.has(gone.device.id), "the gateway away has not heard of it");
      pulled = false;
      await until(() => !gw.keys.has(gone.device.id), "the revoked device's keys withdrawn at the gateway once it is back");
      await until(() => ![oldKeys, ""].includes(gw.keys.grant(turned.device.id)), "the rotated device's new keys there");
      await until(() => gw.devices!.onlineCount() === 0, "both sessions ended, the revoked device's and the one on the keys rotated away");
      assert.ok(gw.keys.has(kept.device.id), "the other device's keys stay");
    } finally {
      board?.stop();
      await gw.close();
      cable.close();
      await s.close();
    }
  });

  it("grants a full backbone queue refuses are sent when it drains, as the devices are then, and none is lost", async () => {
    const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push((await store.registry.provision({ board: i % 2 ? "puckjs" : "esp32-espruino" })).device.id);
      // In the registry's order: two made in one tick of PGlite's clock (milliseconds) go by id.
      ids.splice(0, ids.length, ...(await store.registry.list()).map((d) => d.id));
      const keys = new KeyTable();
      let room = 0;
      const queued: [string, string][] = []; // what the gateway's queue took, in order
      const g = new KeyGrants({
        registry: store.registry, keys, responderGrant: "public=ab;secret=cd", gateways: () => ["gw"], ending: () => {},
        send: (_gw, device, grant) => room > 0 && (room--, queued.push([device, grant]), true),
      });
      await g.refresh(); // every grant refused: the gateway's queue is full
      assert.equal(queued.length, 0);
      g.grantGateway("gw"); // it (re)connected: everything is owed, its earlier refusals replaced
      assert.equal(g.owedCount, 11, "the responder's and 8 devices', between the whole set's two markers");
      room = 4;
      g.drained("gw");
      assert.deepEqual(queued.map(([d]) => d), ["*grants*", "*responder*", ...ids.slice(0, 2)], "in order, as far as there is room");
      assert.equal(g.owedCount, 7);
      // Meanwhile one device is revoked and one provisioned: the revoked one's owed grant goes as a withdrawal,
      // the new device's grant after those owed before it.
      await store.registry.revoke(ids[5]);
      await g.refreshDevice(ids[5]);
      const late = (await store.registry.provision({ board: "puckjs" })).device.id;
      await g.refreshDevice(late);
      assert.equal(g.owedCount, 8);
      room = 100;
      g.drained("gw");
      assert.equal(g.owedCount, 0);
      assert.deepEqual(queued.map(([d]) => d), ["*grants*", "*responder*", ...ids, "*granted*", late]);
      const grants = new Map(queued);
      assert.equal(grants.get(ids[5]), "", "the revoked device's grant is its withdrawal");
      for (const id of [...ids.filter((d) => d !== ids[5]), late]) assert.equal(grants.get(id), keys.grant(id));
      assert.match(grants.get(late)!, /^mode=psk;current=[0-9a-f]{64};rotated=0$/);
    } finally {
      await store.close();
    }
  });
});
