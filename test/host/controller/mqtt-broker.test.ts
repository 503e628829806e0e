// The embedded broker's door and ACL, against the broker as `npm start` runs it: Delivery with its embedded
// aedes broker, application credentials in a real (PGlite) store, applications as mqtt.js clients over TCP.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import type { CommandHandler } from "../../../host/controller/mqtt";
import { Delivery } from "../../../host/controller/mqtt";
import type { BrokerLimits } from "../../../host/controller/mqtt-broker";
import type { MqttAccess } from "../../../host/controller/mqtt-acl";
import { MasterKey } from "../../../host/controller/masterkey";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { Metrics } from "../../../host/telemetry/metrics";
import { appClient, connackCode, rawLogin, rawSocket, remainingLength, type AppClient, type Login } from "../../harness/mqtt-clients";
import { collectGarbage } from "../../harness/gc";
import { until } from "../../harness/until";

type Setup = { store: ControllerStore; delivery: Delivery; metrics: Metrics; url: string; port: number; commands: [string, number[]][]; a: string; b: string };

async function setup(limits: Partial<BrokerLimits> = {}): Promise<Setup> {
  const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
  const commands: [string, number[]][] = [];
  const onCommand: CommandHandler = (id, payload) => void commands.push([id, [...payload]]);
  const metrics = new Metrics({ processMetrics: false });
  const delivery = new Delivery({ broker: { kind: "embedded", port: 0, logins: store.mqtt, limits }, metrics, onCommand });
  await delivery.start();
  const a = (await store.registry.provision({ board: "puckjs" })).device.id;
  const b = (await store.registry.provision({ board: "puckjs" })).device.id;
  return { store, delivery, metrics, url: delivery.brokerUrl, port: delivery.broker!.port, commands, a, b };
}

async function teardown(s: Setup | undefined): Promise<void> {
  await s?.delivery.stop({ drainMs: 100 });
  await s?.store.close();
}

async function credential(s: Setup, devices: "all" | string[], access: MqttAccess): Promise<Login> {
  const { credential: c, password } = await s.store.mqtt.create({ devices, access });
  return { username: c.username, password };
}

/** Resolves when the broker cut `c` (a refused publish, a revoked credential); fails if it never does. */
const cut = (c: AppClient) => until(() => !c.connected, "the broker cut the client");

function drainedOrGone(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done).off("close", done);
      resolve();
    };
    socket.on("drain", done).on("close", done);
  });
}

const reading = (device: string, seq: number) => ({ device, seq, payload: new Uint8Array([seq]) });
const refusals = async (m: Metrics, what: string, reason: string) => Number(new RegExp(`sesame_mqtt_refused_total\\{what="${what}",reason="${reason}"\\} (\\d+)`).exec(await m.text())?.[1] ?? 0);

describe("embedded MQTT broker: identities and ACLs", function () {
  this.timeout(60_000);
  let s: Setup;
  const open: AppClient[] = [];
  before(async () => {
    s = await setup();
  });
  after(() => teardown(s));
  afterEach(async () => {
    for (const c of open.splice(0)) c.end(true);
  });
  async function app(login: Login | undefined, ...filters: string[]): Promise<AppClient> {
    const c = await appClient(s.url, login);
    open.push(c);
    for (const f of filters) await c.subscribeAsync(f, { qos: 1 });
    return c;
  }

  it("refuses anonymous clients and wrong passwords at CONNECT, and counts them", async () => {
    assert.equal(await connackCode(s.url, undefined), 5, "anonymous: not authorized");
    const good = await credential(s, "all", "read");
    assert.equal(await connackCode(s.url, { username: good.username, password: good.password + "x" }), 4, "a wrong password: bad username or password");
    assert.equal(await connackCode(s.url, { username: "app-000000000000", password: good.password }), 4, "an unknown user");
    assert.equal(await connackCode(s.url, { username: "sesame-controller", password: good.password }), 4, "the controller's name with another password");
    assert.equal(await connackCode(s.url, good), 0);
    assert.equal(await refusals(s.metrics, "connect", "anonymous"), 1);
    assert.equal(await refusals(s.metrics, "connect", "bad-credentials"), 3);
  });

  it("a credential scoped to device A reads A's readings and never B's, whatever wildcard it subscribes with", async () => {
    const onlyA = await app(await credential(s, [s.a], "read"), "sesame/devices/+/up", "sesame/#", "sesame/devices/+/events");
    const everything = await app(await credential(s, "all", "read"), "sesame/devices/+/up");
    s.delivery.publishUplink(reading(s.b, 1));
    s.delivery.publishEvent(s.b, "session-opened");
    s.delivery.publishUplink(reading(s.a, 2));
    s.delivery.publishEvent(s.a, "session-opened");
    const aTopics = [`sesame/devices/${s.a}/up`, `sesame/devices/${s.a}/events`];
    await until(() => aTopics.every((t) => onlyA.got.some((m) => m.topic === t)), "A's reading and event");
    await until(() => everything.got.length === 2, "both readings, for the credential scoped to all");
    // Readings from one publisher arrive in order: had B's been forwarded, it would be here before A's.
    assert.deepEqual(onlyA.got.map((m) => m.topic), aTopics, "A's two messages, once each though two filters match, and nothing of B");
    assert.deepEqual(everything.got.map((m) => JSON.parse(m.body).device), [s.b, s.a]);
    // A filter that can only ever name B's topics, or the commands, is refused outright (SUBACK 128).
    await assert.rejects(onlyA.subscribeAsync([`sesame/devices/${s.b}/up`, "sesame/devices/+/down", "$SYS/#"], { qos: 1 }), (e: { packet?: { granted?: number[] } }) => {
      assert.deepEqual(e.packet?.granted, [128, 128, 128]);
      return true;
    });
  });

  it("a read-only credential's command is not delivered: the broker cuts it; a command-scoped one's is", async () => {
    const reader = await app(await credential(s, "all", "read"));
    const commander = await app(await credential(s, [s.a], "command"));
    const before = s.commands.length;
    reader.publish(`sesame/devices/${s.a}/down`, JSON.stringify({ payload: "AgE=" }), { qos: 1 });
    await cut(reader);
    // Out of its scope: cut as well.
    const strayCommander = await app(await credential(s, [s.a], "command"));
    strayCommander.publish(`sesame/devices/${s.b}/down`, JSON.stringify({ payload: "AgE=" }), { qos: 1 });
    await cut(strayCommander);
    await commander.publishAsync(`sesame/devices/${s.a}/down`, JSON.stringify({ payload: "AwI=" }), { qos: 1 });
    await until(() => s.commands.length > before, "the commander's command");
    assert.deepEqual(s.commands.slice(before), [[s.a, [3, 2]]]);
    assert.ok((await refusals(s.metrics, "publish", "not-allowed")) >= 2);
  });

  it("no application publish to up reaches a subscriber, retained or not, and nothing is retained", async () => {
    const watcher = await app(await credential(s, "all", "read"), "sesame/devices/+/up");
    const forger = await app(await credential(s, "all", "both"));
    forger.publish(`sesame/devices/${s.a}/up`, JSON.stringify({ device: s.a, seq: 99, payload: "ZmFrZQ==" }), { qos: 1 });
    await cut(forger);
    const retainer = await app(await credential(s, "all", "both"));
    retainer.publish(`sesame/devices/${s.a}/up`, JSON.stringify({ device: s.a, seq: 98, payload: "ZmFrZQ==" }), { qos: 1, retain: true });
    await cut(retainer);
    const retainedCommand = await app(await credential(s, "all", "both"));
    retainedCommand.publish(`sesame/devices/${s.a}/down`, JSON.stringify({ payload: "AQ==" }), { qos: 1, retain: true });
    await cut(retainedCommand);
    // A subscriber arriving now would get any retained message first, then the controller's real reading.
    const later = await app(await credential(s, "all", "read"), "sesame/devices/+/up");
    s.delivery.publishUplink(reading(s.a, 7));
    await until(() => later.got.length >= 1 && watcher.got.length >= 1, "the real reading");
    assert.deepEqual(later.got.map((m) => JSON.parse(m.body).seq), [7]);
    assert.deepEqual(watcher.got.map((m) => JSON.parse(m.body).seq), [7]);
    assert.ok((await refusals(s.metrics, "publish", "retain")) >= 2);
  });

  it("a revoked credential's clients are cut at once and it cannot log in again", async () => {
    const login = await credential(s, "all", "read");
    const c1 = await app(login, "sesame/devices/+/up");
    const c2 = await app(login);
    await s.store.mqtt.revoke(login.username);
    await Promise.all([cut(c1), cut(c2)]);
    assert.equal(await connackCode(s.url, login), 4);
  });

  it("another credential cannot take over a client id (and so cut the controller or another application)", async () => {
    const first = await app(await credential(s, "all", "read"));
    const other = await credential(s, "all", "read");
    await assert.rejects(appClient(s.url, other, { clientId: first.options.clientId }), (e: { code?: number }) => e.code === 2);
    assert.ok(first.connected);
  });
});

describe("embedded MQTT broker: bounds", function () {
  this.timeout(120_000);
  let s: Setup | undefined;
  afterEach(async () => {
    await teardown(s);
    s = undefined;
  });

  it("a publish announced at 100 MB is refused at its header: the connection is cut, nothing is kept or retained", async () => {
    s = await setup();
    const login = await credential(s, "all", "both");
    const socket = await rawLogin(s.port, login);
    const topic = Buffer.from(`sesame/devices/${s.a}/up`);
    const announced = 100 * 1024 * 1024;
    collectGarbage();
    const before = process.memoryUsage();
    // PUBLISH, QoS 0, retain; then the body in 64 KiB slices of one reused buffer, until the broker hangs up.
    socket.write(Buffer.concat([Buffer.from([0x31]), remainingLength(announced), Buffer.from([topic.length >> 8, topic.length & 0xff]), topic]));
    const slice = Buffer.alloc(64 * 1024, 0x41);
    let sent = topic.length + 2, hungUp = false;
    void socket.gone.then(() => (hungUp = true));
    while (!hungUp && sent < announced) {
      const n = Math.min(slice.length, announced - sent);
      if (!socket.write(n === slice.length ? slice : slice.subarray(0, n))) await drainedOrGone(socket);
      sent += n;
    }
    assert.ok(sent < announced, "the broker read the whole 100 MB");
    await socket.gone;
    collectGarbage();
    const after = process.memoryUsage();
    const grew = after.arrayBuffers + after.heapUsed - before.arrayBuffers - before.heapUsed;
    assert.ok(grew < 16 * 1024 * 1024, `memory grew by ${(grew / 1048576).toFixed(1)} MB`);
    assert.equal(await refusals(s.metrics, "packet", "oversize"), 1);
    const later = await appClient(s.url, await credential(s, "all", "read"));
    await later.subscribeAsync("sesame/devices/+/up", { qos: 1 });
    s.delivery.publishUplink(reading(s.a, 1));
    await until(() => later.got.length === 1, "the real reading");
    assert.equal(later.got[0].retain, false);
    later.end(true);
  });

  it("a packet just under the bound goes through; a command body of the largest command fits", async () => {
    s = await setup();
    const commander = await appClient(s.url, await credential(s, "all", "command"));
    const payload = Buffer.alloc(4095, 0xab).toString("hex"); // the largest command, in its longest encoding
    await commander.publishAsync(`sesame/devices/${s.a}/down`, JSON.stringify({ payload, encoding: "hex" }), { qos: 1 });
    await until(() => s!.commands.length === 1, "the largest command");
    assert.equal(s.commands[0][1].length, 4095);
    commander.end(true);
  });

  it("bounds connections that have not logged in, per address; throttles an address after failed logins; cuts a silent one", async () => {
    s = await setup({ pendingPerAddress: 3, failures: { burst: 3, perSecond: 0.001 }, connectTimeoutMs: 2000 });
    const login = await credential(s, "all", "read");
    const silent = await Promise.all([1, 2, 3].map(() => rawSocket(s!.port)));
    const fourth = await rawSocket(s.port);
    await until(() => fourth.destroyed || fourth.readableEnded, "the fourth connection cut before it sent a byte");
    assert.equal(await refusals(s.metrics, "connect", "too-many-pending"), 1);
    await Promise.all(silent.map((c) => c.gone)); // no CONNECT within connectTimeoutMs
    assert.equal(await refusals(s.metrics, "connect", "timeout"), 3);

    for (let i = 0; i < 3; i++) assert.equal(await connackCode(s.url, { ...login, password: "wrong" }), 4);
    // The address's bucket is empty: even the right password is not looked at now.
    assert.equal(await connackCode(s.url, login), "closed");
    assert.ok((await refusals(s.metrics, "connect", "throttled")) >= 1);
  });
});
