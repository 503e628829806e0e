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
