// The admin API's fleet routes and event stream over HTTP, on a real store (embedded Postgres): what they
// show, that a stream is one audited call however many events it carries, and its bounds (connections per
// credential, heartbeat, lifetime, a reader that stops reading). A scoped credential (principal.ts) sees
// and does only what it is given.
import assert from "node:assert/strict";
import * as net from "node:net";
import { createAdminApi, type AdminApi } from "../../../../host/controller/admin";
import { MemoryDeviceStatus } from "../../../../host/controller/device-status";
import { LiveFeed } from "../../../../host/controller/live/feed";
import { liveRoutes } from "../../../../host/controller/live/routes";
import { EventStreams, type StreamLimits } from "../../../../host/controller/live/streams";
import { MasterKey } from "../../../../host/controller/masterkey";
import { adminCredentials, firstOf, type Principal } from "../../../../host/controller/principal";
import { openControllerStore, type ControllerStore } from "../../../../host/controller/store";
import { generateToken } from "../../../../host/controller/tokens";
import { until } from "../../../harness/until";

type Event = { event: string; data: any };

/** Reads an event stream as a browser would, collecting its events and comments. */
function follow(url: string, token: string): { events: Event[]; comments: string[]; status: Promise<number>; ended: Promise<void>; stop: () => void } {
  const ctl = new AbortController();
  const events: Event[] = [], comments: string[] = [];
  let status!: (n: number) => void, ended!: () => void;
  const out = { events, comments, status: new Promise<number>((r) => (status = r)), ended: new Promise<void>((r) => (ended = r)), stop: () => ctl.abort() };
  void (async () => {
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: ctl.signal });
      status(res.status);
      let buf = "";
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += Buffer.from(chunk).toString("utf8");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.startsWith(":")) comments.push(block);
          const ev = /^event: (.*)$/m.exec(block)?.[1], data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev !== undefined && data !== undefined) events.push({ event: ev, data: JSON.parse(data) });
        }
      }
    } catch {
      /* aborted */
    }
    ended();
  })();
  return out;
}

describe("admin API: fleet routes and the event stream", function () {
  this.timeout(60_000);
  const admin = generateToken(), app = generateToken();
  let store: ControllerStore, api: AdminApi, feed: LiveFeed, base = "";
  const status = new MemoryDeviceStatus();
  let ids: string[] = [];

  async function start(limits: Partial<StreamLimits>, scope?: Omit<Principal, "actor">): Promise<void> {
    await api?.close();
    feed?.close();
    feed = new LiveFeed({ store, status, gateways: () => [], queues: () => ({ "mqtt-out": 0 }) }, new EventStreams(limits));
    const scoped = async (t: string) => (scope !== undefined && t === app.token ? { actor: "app", ...scope } : undefined);
    api = createAdminApi({
      store, tokens: [], credentials: firstOf(adminCredentials([{ id: "ops", sha256: admin.sha256 }]), scoped),
      routes: liveRoutes({ store, feed, command: async () => ({ rejected: "no gateway in this test" }) }),
      limits: { perToken: { burst: 1000, perSecond: 1000 } },
    });
    base = `http://127.0.0.1:${(await api.listen(0)).port}`;
  }

  const get = async (path: string, token = admin.token, method = "GET") => {
    const r = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: r.status, body: (await r.json()) as any };
  };
  const streamRows = async () => (await store.audit.list({ limit: 1000 })).filter((a) => a.action === "events.stream");

  before(async () => {
    store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
    ids = [];
    for (const name of ["one", "<b>two</b>"]) ids.push((await store.registry.provision({ board: "puckjs", name })).device.id);
  });
  after(async () => {
    await api?.close();
    feed?.close();
    await store?.close();
  });

  it("shows the fleet and one device: last heard, readings per minute, the last readings and the ids never received", async () => {
    await start({});
    const now = Date.now();
    status.heard(ids[0], { gateway: "0a0b0c0d", peer: ids[0] }, now);
    status.linked(ids[0], "ble:puck-1");
    for (const id of [0, 1, 4, 2]) feed.reading(ids[0], id, Uint8Array.of(9, id), "0a0b0c0d", now);
    const who = await get("/v1/whoami");
    assert.deepEqual(who.body, { actor: "ops", devices: "all", actions: "all" });
    const fleet = await get("/v1/fleet");
    assert.equal(fleet.status, 200);
    const [one, two] = fleet.body.devices;
    assert.deepEqual([one.name, one.online, one.link, one.gateway, one.missing], ["one", true, "ble:puck-1", "0a0b0c0d", 1]);
    assert.ok(one.perMinute >= 1);
    assert.deepEqual([two.name, two.online, two.lastSeen], ["<b>two</b>", false, null]);
    const d = await get(`/v1/fleet/devices/${ids[0]}`);
    assert.deepEqual(d.body.readings.map((r: { id: number }) => r.id), [2, 4, 1, 0]);
    assert.equal(d.body.readings[0].payload, "0902");
    assert.deepEqual(d.body.missing, [3]);
    assert.equal((await get("/v1/fleet/devices/00112233")).status, 404);
    assert.equal((await get("/v1/fleet/devices/NOT-HEX")).status, 400);
  });

  it("streams the fleet, then changes and the followed device's readings, as one audited call", async () => {
    await start({});
    const before = (await streamRows()).length;
    const s = follow(`${base}/v1/events?device=${ids[0]}`, admin.token);
    assert.equal(await s.status, 200);
    await until(() => s.events.some((e) => e.event === "fleet"), "the opening fleet event");
    assert.deepEqual(s.events[0].data.devices.map((r: { name: string }) => r.name), ["one", "<b>two</b>"]);
    for (let i = 10; i < 30; i++) feed.reading(ids[0], i, Uint8Array.of(i), "0a0b0c0d", Date.now());
    feed.reading(ids[1], 7, Uint8Array.of(7), "0a0b0c0d", Date.now()); // another device's: not followed
    await until(() => s.events.filter((e) => e.event === "reading").length === 20, "twenty readings");
    assert.ok(s.events.every((e) => e.event !== "reading" || e.data.device === ids[0]));
    await store.registry.revoke(ids[1]);
    feed.registryChanged(ids[1], "revoked");
    await until(() => s.events.some((e) => e.event === "registry" && e.data.device === ids[1]), "the revocation");
    await until(() => s.events.some((e) => e.event === "devices" && e.data.devices.some((r: { id: string; revoked: boolean }) => r.id === ids[1] && r.revoked)), "its row, revoked");
    s.stop();
    await s.ended;
    assert.equal((await streamRows()).length - before, 1, "one audit row for the stream, not one per event");
  });

  it("bounds streams: per credential (429, audited), a heartbeat, a lifetime, and a reader that stops reading is cut off", async () => {
    await start({ perActor: 2, heartbeatMs: 50, lifetimeMs: 400, maxBufferedBytes: 64 * 1024 });
    const a = follow(`${base}/v1/events`, admin.token), b = follow(`${base}/v1/events`, admin.token);
    assert.deepEqual([await a.status, await b.status], [200, 200]);
    await until(() => feed.streams.size === 2, "two streams open");
    const third = await get("/v1/events");
    assert.equal(third.status, 429);
    assert.match(third.body.message, /at most 2 per credential/);
    assert.equal((await streamRows())[0].outcome, "rate-limited");
    await until(() => a.comments.includes(": heartbeat"), "a heartbeat");
    await Promise.all([a.ended, b.ended]);
    assert.ok(a.events.some((e) => e.event === "bye"), "the stream said why it ended");
    assert.equal(feed.streams.stats.expired, 2);

    // A client that asks for a stream and never reads: what waits for it grows past the bound and it is cut.
    await start({ maxBufferedBytes: 64 * 1024 });
    const sock = net.connect(Number(new URL(base).port), "127.0.0.1");
    sock.write(`GET /v1/events?device=${ids[0]} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin.token}\r\n\r\n`);
    sock.pause();
    await until(() => feed.streams.size === 1, "the silent reader's stream open");
    const big = new Uint8Array(64);
    for (let i = 0; i < 400_000 && feed.streams.stats.slow === 0; i++) {
      feed.reading(ids[0], 100 + i, big, "0a0b0c0d", Date.now());
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.equal(feed.streams.stats.slow, 1, "the reader that never read was cut off");
    assert.equal(feed.streams.size, 0);
    sock.destroy();
  });

  it("a stream shows a page of the fleet, by a search, and the whole of it in numbers; rows outside its page never go to it", async () => {
    await start({});
    // 2,500 devices in all (inserted as a large registry would hold them), 40 of them heard just now.
    await store.db.query(
      "INSERT INTO devices (id, name, board, mode, kid, public_key) SELECT lpad(to_hex(g), 16, '0'), CASE WHEN g = 1234 THEN 'greenhouse-7' ELSE 'sensor-' || g END, " +
      "'puckjs', 'dh', lpad(to_hex(g), 8, '0'), decode(repeat('ab', 32), 'hex') FROM generate_series(1, 2498) g",
    );
    feed.registryChanged(ids[0], "provisioned");
    const order = (await store.db.query<{ id: string }>("SELECT id FROM devices ORDER BY created_at, id")).map((d) => d.id);
    const now = Date.now();
    for (const id of order.slice(100, 140)) status.heard(id, { gateway: "0a0b0c0d", peer: id }, now);
    const online = (await get("/v1/fleet")).body.devices.filter((r: { online: boolean }) => r.online).length;

    const page = follow(`${base}/v1/events?from=100&size=50`, admin.token);
    const search = follow(`${base}/v1/events?q=GREENHOUSE`, admin.token);
    await until(() => page.events.length > 0 && search.events.length > 0, "both opening events");
    const first = page.events[0];
    assert.equal(first.event, "fleet");
    assert.deepEqual(first.data.devices.map((r: { id: string }) => r.id), order.slice(100, 150));
    assert.deepEqual([first.data.total, first.data.from], [2500, 100]);
    assert.deepEqual(first.data.summary, { devices: 2499, revoked: 1, online, perMinute: first.data.summary.perMinute, sessions: 0 });
    assert.ok(online >= 40);
    assert.deepEqual(search.events[0].data.devices.map((r: { name: string }) => r.name), ["greenhouse-7"]);
    assert.equal(search.events[0].data.total, 1);
    assert.equal(search.events[0].data.summary.devices, 2499, "the numbers are the whole fleet's, not the search's");

    // A reading inside the page goes to it as its row; one outside never does. The whole in numbers follows.
    const inside = order[120], outside = order[400];
    for (const id of [outside, inside]) {
      status.heard(id, { gateway: "0a0b0c0d", peer: id }, Date.now());
      feed.reading(id, 1, Uint8Array.of(1), "0a0b0c0d", Date.now());
    }
    await until(() => page.events.some((e) => e.event === "devices" && e.data.devices.some((r: { id: string }) => r.id === inside)), "the row inside the page");
    await until(() => page.events.some((e) => e.event === "summary" && e.data.summary.online === online + 1), "one more online in the numbers");
    const sent = page.events.filter((e) => e.event === "devices").flatMap((e) => e.data.devices.map((r: { id: string }) => r.id));
    assert.ok(sent.every((id: string) => order.slice(100, 150).includes(id)), "only the page's rows");

    // A device made that the search matches: the searching stream gets its page again, now with both.
    await store.db.query("INSERT INTO devices (id, name, board, mode, kid, public_key) VALUES ('00000000000fffff', 'Greenhouse-8', 'puckjs', 'dh', '000fffff', decode(repeat('ab', 32), 'hex'))");
    feed.registryChanged("00000000000fffff", "provisioned");
    await until(() => search.events.filter((e) => e.event === "fleet").length === 2, "the search's page again");
    const again = search.events.filter((e) => e.event === "fleet")[1].data;
    assert.deepEqual([again.devices.map((r: { name: string }) => r.name), again.total], [["greenhouse-7", "Greenhouse-8"], 2]);
    // The opening event is the page, not the fleet: 50 rows against 2,501.
    const bytes = (x: unknown) => JSON.stringify(x).length;
    assert.ok(bytes(first.data) * 20 < bytes((await get("/v1/fleet")).body), "a page is a small part of the whole table");
    page.stop();
    search.stop();
    await Promise.all([page.ended, search.ended]);

    // The last page holds what is left; a view out of bounds is a 400 that says what is allowed.
    assert.deepEqual((await get("/v1/fleet?from=2480&size=100")).body.devices.length, 21);
    for (const [q, says] of [["size=0", /size: must be a whole number from 1 to 1000/], ["size=1001", /size/], ["from=-1", /from: must be a whole number/], [`q=${"x".repeat(65)}`, /q: at most 64/], ["page=2", /unknown query parameter "page"/]] as const) {
      const r = await get(`/v1/events?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(r.body.message, says);
    }
  });

  it("a scoped credential sees only its devices and may do only its actions (403, audited)", async () => {
    await start({}, { devices: new Set([ids[0]]), actions: new Set(["whoami", "fleet.list", "fleet.device", "events.stream"]) });
    const who = await get("/v1/whoami", app.token);
    assert.deepEqual(who.body, { actor: "app", devices: [ids[0]], actions: ["events.stream", "fleet.device", "fleet.list", "whoami"] });
    const fleet = await get("/v1/fleet", app.token);
    assert.deepEqual(fleet.body.devices.map((r: { id: string }) => r.id), [ids[0]]);
    assert.equal((await get(`/v1/fleet/devices/${ids[1]}`, app.token)).status, 404);
    const revoke = await get(`/v1/devices/${ids[0]}/revoke`, app.token, "POST");
    assert.equal(revoke.status, 403);
    assert.equal((await store.registry.get(ids[0]))!.revokedAt, null);
    const row = (await store.audit.list({ limit: 1 }))[0];
    assert.deepEqual([row.actor, row.action, row.outcome], ["app", "device.revoke", "denied"]);
    assert.equal((await get(`/v1/events?device=${ids[1]}`, app.token)).status, 404);
    const s = follow(`${base}/v1/events`, app.token);
    await until(() => s.events.some((e) => e.event === "fleet"), "the opening fleet event");
    assert.deepEqual(s.events[0].data.devices.map((r: { id: string }) => r.id), [ids[0]]);
    s.stop();
    await s.ended;
  });
});
