// Application delivery against real brokers over real TCP: the embedded aedes broker and a Mosquitto
// process. The application side is an ordinary MQTT client, as a user's would be, logged in with an
// application credential on the embedded broker (its ACL has its own tests: mqtt-broker.test.ts).
import assert from "node:assert/strict";
import { createConnection, createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { connectAsync } from "mqtt";
import { Delivery } from "../../../host/controller/mqtt";
import type { BrokerChoice, DeliveryOptions } from "../../../host/controller/mqtt";
import { EmbeddedBroker } from "../../../host/controller/mqtt-broker";
import { MasterKey } from "../../../host/controller/masterkey";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { Metrics } from "../../../host/telemetry/metrics";
import { Logger, memorySink } from "../../../host/telemetry/log";
import { Mosquitto } from "../../harness/mosquitto";
import { appClient, type AppClient, type Login } from "../../harness/mqtt-clients";

/**
 * `controller`: how Delivery logs in (in its URL); `app`: an application's login with read and command access;
 * `prefix`: the topic prefix to publish under (the embedded broker's ACL knows only its own, "sesame").
 */
type BrokerUnderTest = { url: string; port: number; controller: Login | undefined; app: Login | undefined; prefix: string; stop(): Promise<void>; start(): Promise<void>; dispose(): Promise<void> };

/** Application credentials in a real (in-memory PGlite) store, as the controller keeps them. */
async function credentialStore(): Promise<{ store: ControllerStore; app: Login }> {
  const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
  const made = await store.mqtt.create({ devices: "all", access: "both" });
  return { store, app: { username: made.credential.username, password: made.password } };
}

async function aedesBroker(): Promise<BrokerUnderTest> {
  const { store, app } = await credentialStore();
  const controllerPassword = randomBytes(18).toString("base64url");
  let b = new EmbeddedBroker({ port: 0, logins: store.mqtt, controllerPassword });
  const port = await b.start();
  return {
    url: `mqtt://127.0.0.1:${port}`, port, controller: b.controllerLogin, app, prefix: "sesame",
    stop: () => b.stop(),
    // A new broker on the same port: what a restarted process would be (sessions gone).
    start: async () => {
      b = new EmbeddedBroker({ port, logins: store.mqtt, controllerPassword });
      await b.start();
    },
    dispose: async () => {
      await b.stop();
      await store.close();
    },
  };
}

async function mosquittoBroker(): Promise<BrokerUnderTest> {
  const m = await Mosquitto.start();
  return { url: m.url, port: m.port, controller: undefined, app: undefined, prefix: "sesame/site-a", stop: () => m.stop(), start: () => m.start(), dispose: () => m.dispose() };
}

/** `url` with `login` in it, as an operator writes --mqtt-url. */
function withLogin(url: string, login: Login | undefined): string {
  if (login === undefined) return url;
  const u = new URL(url);
  u.username = login.username;
  u.password = login.password;
  return u.toString();
}

/** A TCP plug between Delivery and the broker: lets the test decide when Delivery may reconnect. */
class Plug {
  private server: Server | undefined;
  private readonly conns = new Set<Socket>();
  open = true;
  port = 0;
  constructor(private readonly target: number) {}
  async start(): Promise<void> {
    this.server = createServer((a) => {
      if (!this.open) return void a.destroy();
      const b = createConnection({ port: this.target, host: "127.0.0.1" });
      for (const s of [a, b]) {
        this.conns.add(s);
        s.on("close", () => (this.conns.delete(s), a.destroy(), b.destroy()));
        s.on("error", () => undefined);
      }
      a.pipe(b).pipe(a);
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.port = (this.server!.address() as { port: number }).port;
  }
  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}

async function subscriber(url: string, filter: string, login: Login | undefined): Promise<AppClient> {
  const c = await appClient(url, login);
  await c.subscribeAsync(filter, { qos: 1 });
  return c;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function deliverySuite(name: string, makeBroker: () => Promise<BrokerUnderTest>) {
  describe(`MQTT delivery via ${name}`, function () {
    this.timeout(30_000);
    let broker: BrokerUnderTest;
    const open: { end(force?: boolean): unknown }[] = [];
    const deliveries: Delivery[] = [];
    before(async () => {
      broker = await makeBroker();
    });
    after(async () => {
      await broker.dispose();
    });
    afterEach(async () => {
      for (const d of deliveries.splice(0)) await d.stop({ drainMs: 100 });
      for (const c of open.splice(0)) c.end(true);
    });

    async function delivery(extra: Partial<DeliveryOptions> = {}, broker_: BrokerChoice = { kind: "external", url: withLogin(broker.url, broker.controller) }) {
      const d = new Delivery({ broker: broker_, reconnectMs: 100, ...extra });
      deliveries.push(d);
      await d.start();
      return d;
    }
    async function sub(filter: string) {
      const c = await subscriber(broker.url, filter, broker.app);
      open.push(c);
      return c;
    }

    it("an uplink reaches a subscriber on the device's up topic with the right body", async () => {
      const metrics = new Metrics({ processMetrics: false });
      const prefix = broker.prefix;
      const d = await delivery({ metrics, prefix });
      const s = await sub(`${prefix}/#`);
      const payload = new Uint8Array([1, 2, 3, 0xfe, 0xff]);
      d.publishUplink({ device: "puck-1", seq: 41, payload, gateway: "gw-7", receivedAt: Date.UTC(2025, 0, 2), transport: "ble" });
      d.publishEvent("puck-1", "session-opened", { mode: "psk" });
      await until("2 messages", () => s.got.length === 2);
      assert.equal(s.got[0].topic, `${prefix}/devices/puck-1/up`);
      assert.deepEqual(JSON.parse(s.got[0].body), { device: "puck-1", seq: 41, receivedAt: "2025-01-02T00:00:00.000Z", payload: "AQID/v8=", size: 5, gateway: "gw-7", transport: "ble" });
      assert.equal(s.got[1].topic, `${prefix}/devices/puck-1/events`);
      assert.deepEqual({ ...JSON.parse(s.got[1].body), at: undefined }, { device: "puck-1", event: "session-opened", mode: "psk", at: undefined });
      assert.equal(await d.flush(), true);
      assert.equal(d.stats.published, 2);
      assert.match(await metrics.text(), /sesame_mqtt_published_total\{kind="up"\} 1\n/);
      assert.throws(() => d.publishUplink({ device: "a/b", seq: 0, payload }), /must not contain/);
    });

    it("a command on the down topic reaches onCommand with the exact bytes", async () => {
      const got: [string, number[], boolean][] = [];
      await delivery({ onCommand: (id, bytes, meta) => void got.push([id, [...bytes], meta.confirmed]) });
      const app = await sub("sesame/devices/+/events");
      const bytes = Buffer.from([0, 1, 0x7f, 0x80, 0xff]);
      await app.publishAsync("sesame/devices/bangle-2/down", JSON.stringify({ payload: bytes.toString("base64") }), { qos: 1 });
      await app.publishAsync("sesame/devices/puck-1/down", JSON.stringify({ payload: "cafe", encoding: "hex", confirmed: true }), { qos: 1 });
      await until("2 commands", () => got.length === 2);
      assert.deepEqual(got, [["bangle-2", [0, 1, 0x7f, 0x80, 0xff], false], ["puck-1", [0xca, 0xfe], true]]);
    });

    it("malformed commands are dropped, counted and answered with an event; the next good one still arrives", async () => {
      const metrics = new Metrics({ processMetrics: false });
      const sink = memorySink();
      const got: string[] = [];
      const d = await delivery({
        metrics, log: Logger.create({ stream: sink, level: "debug" }), maxCommandBytes: 8,
        onCommand: (id) => {
          if (id === "ghost") return false; // the controller does not know this device
          if (id === "boom") throw new Error("handler bug");
          got.push(id);
        },
      });
      const app = await sub("sesame/devices/+/events");
      const bad = ["not json", "[]", '{"payload":7}', '{"payload":"@@@@"}', '{"payload":"abc","encoding":"hex"}', JSON.stringify({ payload: Buffer.alloc(9).toString("base64") })];
      for (const b of bad) await app.publishAsync("sesame/devices/puck-1/down", b, { qos: 1 });
      await app.publishAsync("sesame/devices/ghost/down", '{"payload":"AQ=="}', { qos: 1 });
      await app.publishAsync("sesame/devices/boom/down", '{"payload":"AQ=="}', { qos: 1 });
      await app.publishAsync("sesame/devices/puck-1/down", '{"payload":"AQ=="}', { qos: 1 });
      await until("the good command", () => got.length === 1);
      await until("8 refusal events", () => app.got.length === 8);
      assert.deepEqual(d.stats, { ...d.stats, malformed: 6, rejected: 1, failed: 1, commands: 1 });
      const text = await metrics.text();
      assert.match(text, /sesame_mqtt_commands_total\{outcome="malformed"\} 6\n/);
      assert.match(text, /sesame_mqtt_commands_total\{outcome="rejected"\} 1\n/);
      assert.match(text, /sesame_mqtt_commands_total\{outcome="failed"\} 1\n/);
      assert.match(text, /sesame_mqtt_commands_total\{outcome="delivered"\} 1\n/);
      const events = app.got.map((m) => ({ topic: m.topic, ...JSON.parse(m.body) }));
      assert.ok(events.every((e) => e.event === "command-rejected" && typeof e.reason === "string"));
      assert.equal(events.filter((e) => e.topic === "sesame/devices/puck-1/events").length, 6);
      assert.match(events.find((e) => e.device === "ghost").reason, /unknown device/);
      assert.match(events.find((e) => /exceeds/.test(e.reason)).reason, /9 bytes exceeds the limit of 8/);
      const warned = sink.records().filter((r) => r.msg === "malformed command dropped");
      assert.equal(warned.length, 6);
      assert.ok(!sink.lines.join("").includes("AQ=="), "command payloads never reach the log");
    });

    it("while the broker is down, messages queue (bounded, oldest dropped) and flush after it restarts", async () => {
      const plug = new Plug(broker.port);
      await plug.start();
      try {
        const metrics = new Metrics({ processMetrics: false });
        const d = await delivery({ metrics, maxQueue: 5 }, { kind: "external", url: withLogin(`mqtt://127.0.0.1:${plug.port}`, broker.controller) });
        const watch = await sub("sesame/devices/+/up");
        d.publishUplink({ device: "d1", seq: 0, payload: new Uint8Array([0]) });
        await until("the first uplink", () => watch.got.length === 1);
        watch.end(true);

        plug.open = false;
        await broker.stop();
        await until("the disconnect", () => !d.connected);
        for (let seq = 1; seq <= 8; seq++) d.publishUplink({ device: "d1", seq, payload: new Uint8Array([seq]) });
        assert.equal(d.queued, 5);
        assert.equal(d.stats.dropped, 3);
        assert.equal(metrics.snapshot().queued, 5);
        assert.match(await metrics.text(), /sesame_queue_length\{queue="mqtt-out"\} 5\n/);
        assert.match(await metrics.text(), /sesame_mqtt_dropped_total\{reason="queue-full"\} 3\n/);
        assert.equal(await d.flush(300), false, "nothing can flush while the broker is away");

        await broker.start();
        const after = await sub("sesame/devices/+/up"); // subscribed before Delivery may reconnect
        plug.open = true;
        assert.equal(await d.flush(10_000), true);
        await until("5 flushed uplinks", () => after.got.length === 5);
        assert.deepEqual(after.got.map((m) => JSON.parse(m.body).seq), [4, 5, 6, 7, 8]);
        assert.equal(d.queued, 0);
        assert.ok(d.stats.connects >= 2);
      } finally {
        await plug.close();
      }
    });
  });
}

deliverySuite("the embedded aedes broker", aedesBroker);
deliverySuite("a Mosquitto process", mosquittoBroker);

describe("MQTT delivery setup", function () {
  this.timeout(30_000);

  let store: ControllerStore, app: Login;
  before(async () => ({ store, app } = await credentialStore()));
  after(() => store.close());

  it("runs its own embedded broker that applications log in to, and stops it", async () => {
    const d = new Delivery({ broker: { kind: "embedded", port: 0, logins: store.mqtt } });
    await d.start();
    const port = d.broker!.port;
    assert.equal(d.brokerUrl, `mqtt://127.0.0.1:${port}`);
    const s = await subscriber(d.brokerUrl, "sesame/#", app);
    d.publishUplink({ device: "sim-3", seq: 1, payload: new Uint8Array([42]) });
    await until("the uplink", () => s.got.length === 1);
    assert.equal(s.got[0].topic, "sesame/devices/sim-3/up");
    s.end(true);
    await d.stop();
    await assert.rejects(connectAsync(`mqtt://127.0.0.1:${port}`, { ...app, reconnectPeriod: 0, connectTimeout: 1000 }));
    // Once stopped, publishing is counted as dropped, not thrown.
    d.publishUplink({ device: "sim-3", seq: 2, payload: new Uint8Array([1]) });
    assert.equal(d.stats.dropped, 1);
  });

  it("messages published before start() wait in the queue and go out once connected", async () => {
    const broker = new EmbeddedBroker({ port: 0, logins: store.mqtt });
    await broker.start();
    const s = await subscriber(broker.url, "sesame/devices/+/up", app);
    const d = new Delivery({ broker: { kind: "external", url: withLogin(broker.url, broker.controllerLogin) } });
    try {
      d.publishUplink({ device: "early", seq: 1, payload: new Uint8Array([1]) });
      assert.equal(d.queued, 1);
      await Promise.all([d.start(), d.start()]); // one connection, however many callers
      await until("the early uplink", () => s.got.length === 1);
      assert.equal(JSON.parse(s.got[0].body).device, "early");
      assert.equal(d.stats.connects, 1);
    } finally {
      s.end(true);
      await d.stop();
      await broker.stop();
    }
  });

  it("says what to fix: a port in use, an unreachable broker, a bad URL", async () => {
    const first = new EmbeddedBroker({ port: 0 });
    const port = await first.start();
    try {
      await assert.rejects(new EmbeddedBroker({ port }).start(), /MQTT port \d+ on 127.0.0.1 is in use/);
    } finally {
      await first.stop();
    }
    const d = new Delivery({ broker: { kind: "external", url: `mqtt://user:hunter2@127.0.0.1:${port}` }, connectTimeoutMs: 500 });
    await assert.rejects(d.start(), (err: Error) => /could not connect to the MQTT broker at mqtt:\/\/user:\*\*\*@127.0.0.1:\d+ within 500 ms/.test(err.message) && !err.message.includes("hunter2"));
    assert.throws(() => new Delivery({ broker: { kind: "external", url: "localhost" } }), /not a URL|must start with mqtt/);
    assert.throws(() => new Delivery({ broker: { kind: "external", url: "http://x:1" } }), /must start with mqtt:\/\//);
    assert.throws(() => new EmbeddedBroker({ port: 70000 }), /0..65535/);
  });
});
