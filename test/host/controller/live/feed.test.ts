// The console's fleet view (host/controller/live/feed.ts) reads the registry whole only now and then: in
// between it takes the rows changed since its last read (host/controller/registry-changes.ts), so a console
// open on a large fleet does not read every device every few seconds (10,000 devices on PGlite: a fleet()
// every 5 s took 200-219 ms before, 85-111 ms after). The open sessions likewise: their ids are read, and
// whole only the rows it does not hold yet (30-41 ms a fleet() with both).
import assert from "node:assert/strict";
import { MemoryDeviceStatus, ONLINE_WINDOW_MS } from "../../../../host/controller/device-status";
import { LiveFeed, type FleetRow } from "../../../../host/controller/live/feed";
import type { EventStreams } from "../../../../host/controller/live/streams";
import { MasterKey } from "../../../../host/controller/masterkey";
import { FULL_EVERY_MS } from "../../../../host/controller/registry-changes";
import { openControllerStore } from "../../../../host/controller/store";
import { recordQueries } from "../../../harness/queries";

const ADMIN = { actor: "test", devices: "all" as const, actions: "all" as const };

describe("console fleet view: the registry read by its changes", function () {
  this.timeout(60_000);

  it("reads the registry whole once, then only changed rows, and holds every device in the registry's order", async () => {
    const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
    let now = Date.now();
    const feed = new LiveFeed({ store, status: new MemoryDeviceStatus(), gateways: () => [], queues: () => ({}), now: () => now });
    const { queries, stop } = recordQueries(store.db);
    const lists = () => queries.filter((q) => /FROM devices WHERE true ORDER BY created_at, id LIMIT/.test(q)).length; // a whole read's first page
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await store.registry.provision({ board: "puckjs", name: `d${i}` })).device.id);
      // The registry's order: created first, first; two made in one tick of PGlite's clock (milliseconds) go by id.
      const inOrder = async () => (await store.db.query<{ id: string }>("SELECT id FROM devices ORDER BY created_at, id")).map((d) => d.id);
      ids.splice(0, ids.length, ...(await inOrder()));
      assert.deepEqual((await feed.fleet(ADMIN)).devices.map((r) => r.id), ids);
      assert.equal(lists(), 1, "the first read is whole");

      // Later reads take what changed: a revocation, a new device (last, as in the registry's order).
      await store.registry.revoke(ids[2]);
      ids.push((await store.registry.provision({ board: "puckjs", name: "d5" })).device.id);
      now += 5_000;
      const rows = (await feed.fleet(ADMIN)).devices;
      assert.equal(lists(), 1, "no whole read for a change");
      assert.deepEqual(rows.map((r) => r.id), ids);
      assert.deepEqual(rows.filter((r) => r.revoked).map((r) => r.id), [ids[2]]);

      // Open sessions: each shown on its device's row; a session read whole once, then by its id only.
      const s0 = await store.sessions.recordOpen({ deviceId: ids[0], spi: 0x0a0b0c, gateway: "gw-1" });
      await store.sessions.recordOpen({ deviceId: ids[1], spi: 0x0d0e0f, gateway: "gw-1" });
      feed.sessionChanged({ event: "open", gateway: "gw-1" });
      const sessionRows = () => queries.filter((q) => /FROM sessions WHERE id = ANY/.test(q)).length;
      const before = sessionRows();
      let fleet = (await feed.fleet(ADMIN)).devices;
      assert.deepEqual(fleet.slice(0, 2).map((r) => r.session?.spi), [0x0a0b0c, 0x0d0e0f]);
      assert.equal(sessionRows(), before + 1, "the new sessions read whole, in one query");
      await store.sessions.recordClose(s0);
      feed.sessionChanged({ event: "close", gateway: "gw-1" });
      fleet = (await feed.fleet(ADMIN)).devices;
      assert.deepEqual(fleet.slice(0, 2).map((r) => r.session?.spi ?? null), [null, 0x0d0e0f]);
      assert.equal(sessionRows(), before + 1, "a session held is not read again");

      // A device with several open sessions shows its newest (ids 9 and 10 and on: ordered as numbers).
      for (let spi = 1; spi <= 12; spi++) await store.sessions.recordOpen({ deviceId: ids[3], spi, gateway: "gw-2" });
      feed.sessionChanged({ event: "open", gateway: "gw-2" });
      now += 5_000;
      assert.equal((await feed.fleet(ADMIN)).devices[3].session?.spi, 12);

      // A whole read still comes every FULL_EVERY_MS.
      now += FULL_EVERY_MS;
      assert.deepEqual((await feed.fleet(ADMIN)).devices.map((r) => r.id), await inOrder());
      assert.equal(lists(), 2);
    } finally {
      stop();
      feed.close();
      await store.close();
    }
  });

  it("a tick makes the rows of the devices something happened to and a tenth of the others: a change with time alone arrives within ten ticks", async () => {
    const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
    let now = Date.now();
    const status = new MemoryDeviceStatus();
    let made = 0;
    const get = status.get.bind(status);
    status.get = (device, at) => (made++, get(device, at));
    const sent: FleetRow[] = [];
    // One stream open, taking every row update (what EventStreams.each would write to it).
    const streams = {
      size: 1, watched: () => new Set<string>(), follows: () => false, send: () => {}, closeAll: () => {},
      each: (_event: string, data: (s: { principal: typeof ADMIN }) => { devices: FleetRow[] } | undefined) => void sent.push(...(data({ principal: ADMIN })?.devices ?? [])),
    } as unknown as EventStreams;
    const feed = new LiveFeed({ store, status, gateways: () => [], queues: () => ({}), now: () => now }, streams);
    const tick = () => (feed as unknown as { tick(): Promise<void> }).tick();
    try {
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push((await store.registry.provision({ board: "puckjs" })).device.id);
      for (const id of ids) status.heard(id, { gateway: "0a0b0c0d", peer: id }, now);
      await feed.fleet(ADMIN);
      for (let k = 0; k < 10; k++) await tick(); // one sweep: every row sent once
      assert.deepEqual(sent.map((r) => r.id).sort(), ids.slice().sort());
      sent.length = 0;
      made = 0;
      await tick();
      assert.equal(made, 3, "nothing happened: a tenth of the rows made");
      assert.equal(sent.length, 0);

      // A reading: its device's row goes at the next tick.
      now += 1000;
      status.heard(ids[17], { gateway: "0a0b0c0d", peer: ids[17] }, now);
      feed.reading(ids[17], 1, new Uint8Array(4), "0a0b0c0d", now);
      made = 0;
      await tick();
      assert.ok(made <= 4, `${made} rows made`);
      assert.deepEqual(sent.map((r) => [r.id, r.perMinute]), [[ids[17], 2]]);
      sent.length = 0;

      // Nothing heard for the online window: every device goes offline, each row once, within ten ticks.
      now += ONLINE_WINDOW_MS;
      for (let k = 0; k < 10; k++) await tick();
      assert.deepEqual(sent.map((r) => r.id).sort(), ids.slice().sort());
      assert.ok(sent.every((r) => !r.online));
    } finally {
      feed.close();
      await store.close();
    }
  });
});
