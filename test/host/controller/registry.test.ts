import assert from "node:assert/strict";
import { parseFields, deviceEndpoint } from "../../../firmware/runtime/config";
import { hostProvider } from "../../../host/crypto/provider";
import { hex, pidOf } from "../../../host/controller/credentials";
import { MasterKey } from "../../../host/controller/masterkey";
import { LIST_PAGE, RegistryError, type RevokeEvent } from "../../../host/controller/registry";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { policy } from "../../harness/sessions";
import { assertHandshake as handshake } from "./handshake";
import { BACKENDS, stopSharedPostgres } from "./backends";
import { restamp } from "../../harness/restamp";

after(stopSharedPostgres);

describe("device registry: provisioning gives a configuration the firmware runs", function () {
  this.timeout(120_000);
  let store: ControllerStore;
  before(async () => {
    store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
  });
  after(() => store.close());

  it("psk (puckjs): mode, order, a 16-byte id and a 32-byte key; the device completes a handshake with the stored key", async () => {
    const p = await store.registry.provision({ board: "puckjs", name: "kitchen" });
    const f = parseFields(p.config);
    assert.deepEqual(Object.keys(f), ["mode", "order", "id", "psk"]);
    assert.equal(f.mode, "psk");
    assert.equal(f.order, "I");
    assert.match(f.id, /^[0-9a-f]{32}$/);
    assert.match(f.psk, /^[0-9a-f]{64}$/);
    assert.equal(f.id, p.device.id);
    assert.deepEqual({ board: p.device.board, mode: p.device.mode, name: p.device.name, kid: p.device.kid }, { board: "puckjs", mode: "psk", name: "kitchen", kid: null });
    const ep = deviceEndpoint(hostProvider, policy(hostProvider), p.config, () => false);
    assert.equal(hex(ep.cfg.pskI!.id), p.device.id);
    const keys = (await store.registry.lookupPsk(p.device.id))!;
    assert.equal(hex(keys.current), f.psk);
    assert.equal(keys.previous, undefined);
    const m = (await store.registry.findPskByPid(pidOf(keys.current)))!;
    assert.equal(m.deviceId, p.device.id);
    handshake(p.config, `mode=psk;order=${f.order};devices=${m.deviceId}:${hex(m.key)}`);
  });

  for (const [board, order, slice] of [["esp32-espruino", "I", "2"], ["esp32-nodemcu-lora", "I", "0"]]) {
    it(`dh (${board}): kid, the device secret and the pinned responder key; order ${order}; a handshake against the registry's responder`, async () => {
      const p = await store.registry.provision({ board });
      const f = parseFields(p.config);
      assert.deepEqual(Object.keys(f), ["mode", "order", "kid", "secret", "gateway", "slice"]);
      assert.deepEqual([f.mode, f.order, f.slice], ["dh", order, slice]);
      assert.match(f.kid, /^[0-9a-f]{8}$/);
      assert.match(f.secret, /^[0-9a-f]{64}$/);
      const responder = await store.registry.responderKey();
      assert.equal(f.gateway, hex(responder.publicKey));
      const found = (await store.registry.lookupKid(f.kid))!;
      assert.equal(found.deviceId, p.device.id);
      assert.equal(hex(found.publicKey), p.device.publicKey);
      // The device secret is in the config only: nothing in the database holds it.
      const dump = JSON.stringify(await store.db.query("SELECT encode(public_key, 'hex') AS pk, encode(wrapped_key, 'hex') AS w FROM devices"));
      assert.ok(!dump.includes(f.secret));
      handshake(p.config, `mode=dh;order=${f.order};secret=${hex(responder.secret)};devices=${f.kid}:${hex(found.publicKey)}`);
    });
  }

  it("psk mode on a dh board is allowed; dh on a psk board and unknown boards are refused with the reason", async () => {
    const p = await store.registry.provision({ board: "esp32-espruino", mode: "psk" });
    assert.equal(parseFields(p.config).mode, "psk");
    await assert.rejects(store.registry.provision({ board: "puckjs", mode: "dh" }), /mode: puckjs can only be provisioned in psk \(its handshake is psk\)/);
    await assert.rejects(store.registry.provision({ board: "pdp11" }), (e: Error) => {
      assert.ok(e instanceof RegistryError && e.code === "bad-request");
      assert.match(e.message, /board: unknown board "pdp11"; known: banglejs2, esp32-espruino, esp32-nodemcu-lora, mdbt42q, puckjs/);
      return true;
    });
  });
});

for (const b of BACKENDS) {
  describe(`device registry lifecycle (${b.name})`, function () {
    this.timeout(120_000);
    let store: ControllerStore;
    const events: RevokeEvent[] = [];
    before(async () => {
      store = await openControllerStore({ db: await b.options(), masterKeys: [MasterKey.generate()] });
      store.registry.onRevoke((e) => void events.push(e));
    });
    after(() => store.close());
    beforeEach(() => (events.length = 0));

    it("revoke: lookups stop returning the device, its open sessions close, listeners hear of it", async () => {
      const psk = await store.registry.provision({ board: "puckjs" });
      const dh = await store.registry.provision({ board: "esp32-espruino" });
      const key = Buffer.from(parseFields(psk.config).psk, "hex");
      const s1 = await store.sessions.recordOpen({ deviceId: psk.device.id, spi: 0x010203, gateway: "gw-1" });
      await store.sessions.recordOpen({ deviceId: dh.device.id, spi: 0x040506, gateway: "gw-1" });
      assert.equal((await store.sessions.list({ openOnly: true })).length, 2);
      // The open sessions by their ids: a row held already is given back as held, the others are read whole.
      const whole = await store.sessions.list({ openOnly: true });
      const light = await store.sessions.listOpen(new Map([[whole[1].id, whole[1]]]));
      assert.deepEqual(light, whole);
      assert.equal(light[1], whole[1]);
      // Many devices' psk keys in one query: a live psk device's, as lookupPsk gives them; none for dh or unknown ids.
      const many = await store.registry.lookupPskMany([psk.device.id, dh.device.id, "00000000deadbeef"]);
      assert.deepEqual([...many.keys()], [psk.device.id]);
      assert.deepEqual(many.get(psk.device.id), await store.registry.lookupPsk(psk.device.id));

      const failing = store.registry.onRevoke(() => { throw new Error("listener broke"); });
      const r = await store.registry.revoke(psk.device.id);
      failing();
      assert.notEqual(r.device.revokedAt, null);
      assert.equal(r.listenerFailures, 1); // one listener failing does not stop the others
      assert.deepEqual(events, [{ deviceId: psk.device.id, reason: "revoked" }]);
      assert.equal(await store.registry.lookupPsk(psk.device.id), undefined);
      assert.equal((await store.registry.lookupPskMany([psk.device.id])).size, 0);
      assert.equal(await store.registry.findPskByPid(pidOf(key)), undefined);
      const open = await store.sessions.list({ openOnly: true });
      assert.deepEqual(open.map((s) => s.deviceId), [dh.device.id]);
      assert.deepEqual(await store.sessions.listOpen(new Map(whole.map((s) => [s.id, s]))), open, "a closed session leaves, though held");
      const closed = (await store.sessions.list({ deviceId: psk.device.id }))[0];
      assert.equal(closed.closeReason, "device revoked");
      assert.equal(await store.sessions.recordClose(s1), false); // already closed by the revocation
      await assert.rejects(store.sessions.recordOpen({ deviceId: psk.device.id, spi: 7, gateway: "gw-1" }), /unknown or revoked/);

      await store.registry.revoke(dh.device.id);
      assert.equal(await store.registry.lookupKid(dh.device.kid!), undefined);
      // Revoking twice keeps the first time; unknown devices are a not-found error.
      const again = await store.registry.revoke(dh.device.id);
      assert.equal(again.device.revokedAt, (await store.registry.get(dh.device.id))!.revokedAt);
      await assert.rejects(store.registry.revoke("00".repeat(16)), (e: Error) => e instanceof RegistryError && e.code === "not-found");
      assert.ok((await store.registry.list()).some((d) => d.id === dh.device.id));
      assert.ok(!(await store.registry.list({ includeRevoked: false })).some((d) => d.id === dh.device.id));
    });

    it("rotate: new credentials replace the old ones, sessions end, a revoked device cannot be rotated", async () => {
      for (const board of ["puckjs", "esp32-espruino"]) {
        const p = await store.registry.provision({ board });
        const sid = await store.sessions.recordOpen({ deviceId: p.device.id, spi: 42, gateway: "gw-2" });
        const r = await store.registry.rotate(p.device.id);
        assert.equal(r.device.id, p.device.id);
        assert.equal(r.device.generation, 2);
        assert.notEqual(r.device.rotatedAt, null);
        assert.notEqual(r.config, p.config);
        assert.deepEqual(events.pop(), { deviceId: p.device.id, reason: "rotated" });
        assert.equal(await store.sessions.recordClose(sid), false);
        const before = parseFields(p.config), after = parseFields(r.config);
        if (board === "puckjs") {
          assert.equal(after.id, before.id);
          assert.equal(await store.registry.findPskByPid(pidOf(Buffer.from(before.psk, "hex"))), undefined);
          assert.equal(hex((await store.registry.lookupPsk(p.device.id))!.current), after.psk);
        } else {
          assert.equal(await store.registry.lookupKid(before.kid), undefined);
          assert.equal((await store.registry.lookupKid(after.kid))!.deviceId, p.device.id);
          assert.equal(after.gateway, before.gateway);
        }
        await store.registry.revoke(p.device.id);
        await assert.rejects(store.registry.rotate(p.device.id), /is revoked/);
      }
      await assert.rejects(store.registry.rotate("ab".repeat(16)), /not found/);
    });

    it("savePsk keeps an evolved key store; the previous key still finds the device", async () => {
      const p = await store.registry.provision({ board: "banglejs2" });
      const first = (await store.registry.lookupPsk(p.device.id))!;
      const next = hostProvider.hmac(first.current, Buffer.from("evolve"));
      await store.registry.savePsk(p.device.id, { current: next, previous: first.current });
      const now = (await store.registry.lookupPsk(p.device.id))!;
      assert.equal(hex(now.current), hex(next));
      assert.equal(hex(now.previous!), hex(first.current));
      assert.equal(hex((await store.registry.findPskByPid(pidOf(first.current)))!.key), hex(first.current));
      assert.equal(hex((await store.registry.findPskByPid(pidOf(next)))!.key), hex(next));
      assert.equal((await store.registry.get(p.device.id))!.generation, 2);
      await assert.rejects(store.registry.savePsk(p.device.id, { current: next.subarray(0, 16), previous: undefined }), /must be 32 bytes/);
    });
  });
}

for (const b of BACKENDS) {
  describe(`device registry: a whole read goes a page at a time (${b.name})`, function () {
    this.timeout(120_000);

    it("list() gives every device once, in the registry's order, revoked ones as asked, and lets the event loop run between pages", async () => {
      const store = await openControllerStore({ db: await b.options(), masterKeys: [MasterKey.generate()] });
      try {
        // 2.5 pages of devices made in one millisecond, a microsecond apart (a Date cursor would read some twice),
        // numbered against their order, and one in 7 revoked.
        const n = Math.floor(2.5 * LIST_PAGE);
        await store.db.exec(`INSERT INTO devices (id, board, mode, kid, public_key, created_at, revoked_at)
          SELECT lpad(to_hex(${n} - g), 16, '0'), 'puckjs', 'dh', lpad(to_hex(g), 8, '0'), decode(repeat('ab', 32), 'hex'),
                 timestamptz '2026-01-01 00:00:00.000' + g * interval '1 microsecond', CASE WHEN g % 7 = 0 THEN now() END
          FROM generate_series(1, ${n}) g`);
        const order = Array.from({ length: n }, (_, i) => (n - 1 - i).toString(16).padStart(16, "0"));
        let turns = 0;
        let counting = true;
        const count = () => {
          turns++;
          if (counting) setImmediate(count);
        };
        setImmediate(count);
        const all = await store.registry.list();
        counting = false;
        assert.deepEqual(all.map((d) => d.id), order);
        assert.ok(turns >= 2, `the event loop turned ${turns} times during a read of ${n} devices`);
        const live = await store.registry.list({ includeRevoked: false });
        assert.deepEqual(live.map((d) => d.id), order.filter((_, i) => (i + 1) % 7 !== 0));
        assert.ok(live.every((d) => d.revokedAt === null));
        // The rows changed since a time (a rotation of the whole fleet changes every row): the same pages, in the
        // order of their changes (here the reverse of their making, again a microsecond apart), revoked ones too.
        await restamp(store.db, "UPDATE devices SET changed_at = timestamptz '2026-02-01 00:00:00' + ('x' || id)::bit(64)::bigint * interval '1 microsecond'");
        turns = 0;
        counting = true;
        setImmediate(count);
        const changed = await store.registry.changedSince(Date.parse("2026-01-15T00:00:00Z"));
        counting = false;
        assert.deepEqual(changed.map((d) => d.id), order.slice().reverse());
        assert.ok(turns >= 2, `the event loop turned ${turns} times during a read of ${n} changed devices`);
        assert.deepEqual(await store.registry.changedSince(Date.parse("2026-02-02T00:00:00Z")), [], "none changed since");
      } finally {
        await store.close();
      }
    });
  });
}
