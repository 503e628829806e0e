// Several controllers as an operator runs them: two `sesame controller` processes on one real Postgres and
// one real Mosquitto (MQTT 5 shared subscription for commands), `sesame gateway` processes that know both,
// boards running the device runtime in this process (test/harness/ble-board.ts), and backbone clients of
// the test's own where a reading must arrive twice at a precise moment.
import assert from "node:assert/strict";
import * as net from "node:net";
import mqtt from "mqtt";
import pg from "pg";
import { BackboneClient } from "../../host/backbone/link";
import { KIND_UPLINK } from "../../host/backbone/frame";
import { BleBoard, radio } from "../harness/ble-board";
import { startCluster, type Cluster } from "../harness/cluster";
import { Mosquitto } from "../harness/mosquitto";
import { startPostgres, type TestPostgres } from "../harness/postgres";
import { until } from "../harness/until";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hexb = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
/** Short timeouts, so a board notices a gateway that lost its session within seconds. */
const FAST = ";rto=400;tries=3;retry=1000";
const LEASE_MS = 1500;

type Seen = { topic: string; device: string; kind: string; body: Record<string, unknown> };

/** An UPLINK as a gateway sends it: message id (3) | receive time (6) | reading. */
function uplink(device: string, id: number, body: string) {
  const payload = Buffer.alloc(9 + body.length);
  payload.writeUIntBE(id, 0, 3);
  payload.writeUIntBE(Date.now(), 3, 6);
  payload.write(body, 9);
  return { kind: KIND_UPLINK, device: hexb(device), payload } as const;
}

describe("cluster: two controllers on one Postgres and one Mosquitto, gateways that fail over", function () {
  this.timeout(300_000);
  let pgServer: TestPostgres, broker: Mosquitto, c: Cluster, app: mqtt.MqttClient, db: pg.Client, dbUrl: string;
  const seen: Seen[] = [];
  const boards: BleBoard[] = [];
  let stopRadio = () => {};
  /** Readings published for a device: their message ids, in arrival order. */
  const ups = (device: string) => seen.filter((s) => s.kind === "up" && s.device === device).map((s) => s.body.seq as number);
  const events = (device: string, event: string) => seen.filter((s) => s.kind === "events" && s.device === device && s.body.event === event);
  const command = (device: string, bytes: number[]) => app.publishAsync(`sesame/devices/${device}/down`, JSON.stringify({ payload: Buffer.from(bytes).toString("base64") }), { qos: 1 });

  /** A provisioned board attached through gateway `g`, with a session and a first reading published. */
  async function board(g: number): Promise<{ b: BleBoard; id: string }> {
    const p = await c.provision();
    const b = new BleBoard(p.id.slice(0, 8), p.config + FAST);
    boards.push(b);
    b.attach(c.gateways[g].sim);
    await until(() => c.gateways[g].sim.attached, "the simulator link");
    await until(() => {
      if (ups(p.id).length > 0) return true;
      if (b.rt.sender.pending.length === 0) b.send(Buffer.from("hello"));
      return false;
    }, `a first reading from a board on gateway ${g}`, 30_000);
    return { b, id: p.id };
  }

  before(async () => {
    pgServer = await startPostgres();
    broker = await Mosquitto.start();
    dbUrl = await pgServer.createDatabase("cluster");
    c = await startCluster({
      dbUrl, mqttUrl: broker.url, controllers: 2, identities: 3,
      // gateway 0 prefers controller 0, gateway 1 controller 1; gateway 2 relays, through controller 0 first.
      gateways: [{ mode: "terminate", order: [0, 1] }, { mode: "terminate", order: [1, 0] }, { mode: "relay", order: [0, 1] }],
      controllerArgs: ["--lease-ms", String(LEASE_MS)],
    });
    db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    app = await mqtt.connectAsync(broker.url);
    app.on("message", (topic, body) => {
      const [, , device, kind] = topic.split("/");
      seen.push({ topic, device, kind, body: JSON.parse(body.toString()) as Record<string, unknown> });
    });
    await app.subscribeAsync(["sesame/devices/+/up", "sesame/devices/+/events"], { qos: 1 });
    stopRadio = radio(c.gateways.map((g) => g.sim), boards);
  });

  after(async () => {
    stopRadio();
    for (const b of boards) b.stop();
    await app?.endAsync();
    await db?.end();
    await c?.close();
    await broker?.dispose();
    await pgServer?.stop();
  });

  it("a reading that reaches both controllers (a device resending it through another gateway) is published once, and acknowledged to both", async () => {
    const device = (await c.provision()).id;
    const clients = [0, 1].map((i) => new BackboneClient({
      host: "127.0.0.1", port: c.ports.backbone[i], identity: { kid: hexb(c.identities[i].kid), keys: { S: hexb(c.identities[i].public), s: hexb(c.identities[i].secret) } },
      controllerKey: hexb(c.controllerKey),
    }).start());
    try {
      const acked = [0, 0];
      clients.forEach((x, i) => x.on("acked", (base: number) => (acked[i] = base)));
      for (const x of clients) x.send(uplink(device, 7, "twice"));
      await until(() => acked[0] > 0 && acked[1] > 0, "both gateways acknowledged");
      await until(() => ups(device).length > 0, "the reading on MQTT");
      await sleep(1000);
      assert.deepEqual(ups(device), [7], "published once");
      const dups = (await c.status(0))!.duplicates + (await c.status(1))!.duplicates;
      assert.equal(dups, 1, "one controller recognised the copy");
      const scraped = await Promise.all([0, 1].map(async (i) => (await c.call(i, "GET", "/metrics")).text()));
      assert.equal(scraped.filter((t) => /sesame_outbox_readings_total\{outcome="duplicate"\} 1\n/.test(t)).length, 1, "and counted it in /metrics");
    } finally {
      for (const x of clients) await x.close();
    }
  });

  it("a gateway that fails over resends what its controller stored but had not acknowledged: published once", async () => {
    const device = (await c.provision()).id;
    // The gateway reaches controller 0 through a connection the test can cut (a network partition).
    const cut = new Set<net.Socket>();
    const proxy = net.createServer((s) => {
      const t = net.connect(c.ports.backbone[0], "127.0.0.1");
      for (const x of [s, t]) (cut.add(x), x.on("error", () => {}));
      s.pipe(t).pipe(s);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const id = c.identities[2];
    const x = new BackboneClient({
      host: "127.0.0.1", port: (proxy.address() as net.AddressInfo).port, fallbacks: [{ host: "127.0.0.1", port: c.ports.backbone[1] }],
      identity: { kid: hexb(id.kid), keys: { S: hexb(id.public), s: hexb(id.secret) } }, controllerKey: hexb(c.controllerKey),
    }).start();
    const lock = new pg.Client({ connectionString: dbUrl });
    await lock.connect();
    const dups = async () => (await c.status(0))!.duplicates + (await c.status(1))!.duplicates;
    try {
      let acked = 0;
      x.on("acked", (base: number) => (acked = base));
      x.send(uplink(device, 1, "first"));
      await until(() => acked === 1 && ups(device).length === 1, "the first reading, through controller 0");
      const before = await dups();
      // Controller 0 stores the next readings only once the test lets it (were it waiting for the broker
      // instead, the broker answers only once the test lets it): it cannot acknowledge them yet.
      await lock.query("BEGIN");
      await lock.query("LOCK TABLE outbox IN SHARE MODE");
      broker.pause(true);
      for (let i = 2; i <= 6; i++) x.send(uplink(device, i, `r${i}`));
      await until(() => x.stats.sent >= 6, "the readings sent to controller 0");
      await sleep(500);
      // Cut: the gateway fails over to controller 1 and sends them again.
      proxy.close();
      for (const s of cut) s.destroy();
      await until(() => x.connected && x.controller.port === c.ports.backbone[1] && x.stats.resent >= 5, "the resend, to controller 1");
      await sleep(500);
      await lock.query("COMMIT");
      broker.pause(false);
      await until(() => acked === 6, "all acknowledged, by controller 1");
      await until(() => ups(device).length >= 6, "the readings on MQTT");
      await sleep(LEASE_MS + 1500); // a claim left behind would be taken over by now
      assert.deepEqual([...ups(device)].sort(), [1, 2, 3, 4, 5, 6], "each reading published once");
      assert.equal((await dups()) - before, 5, "both controllers stored them: one found the other's rows");
    } finally {
      broker.pause(false);
      await lock.end();
      proxy.close();
      await x.close();
    }
  });

  it("commands: each published once is taken by one controller, handed by the one serving its device's gateway, and run once", async () => {
    const a = await board(0), b = await board(1);
    const sent: Record<string, string[]> = { [a.id]: [], [b.id]: [] };
    for (let i = 0; i < 6; i++) {
      for (const d of [a.id, b.id]) {
        await command(d, [0x01, 0x00, 10 + i]);
        sent[d].push(Buffer.from([0x01, 0x00, 10 + i]).toString("hex"));
      }
    }
    await until(() => a.b.commands.length >= 6 && b.b.commands.length >= 6, "every command at its board");
    await until(() => events(a.id, "command-acked").length + events(b.id, "command-acked").length === 12, "12 command-acked events");
    await sleep(1000);
    assert.deepEqual([...a.b.commands].sort(), sent[a.id], "the board on gateway 0 ran each once");
    assert.deepEqual([...b.b.commands].sort(), sent[b.id], "the board on gateway 1 ran each once");
    assert.equal(events(a.id, "command-rejected").length + events(b.id, "command-rejected").length, 0);
    const rows = (await db.query("SELECT device, id, state, taken_by FROM commands WHERE device = ANY($1) ORDER BY device, id", [[a.id, b.id]])).rows as { id: number; state: string; taken_by: string }[];
    assert.equal(rows.length, 12);
    assert.ok(rows.every((r) => r.state === "acked"), JSON.stringify(rows));
    assert.equal(new Set(rows.map((r) => r.taken_by)).size, 2, "both controllers took some: the shared subscription spreads them");
  });

  it("a gateway killed and restarted: a command open when it died is handed again when the device is next heard, and ids go on from Postgres, so the board runs each once", async () => {
    const a = await board(0);
    await command(a.id, [0x01, 0x00, 0x21]);
    await until(() => a.b.commands.length === 1, "the first command");
    await c.gateways[0].kill();
    await c.gateways[0].start();
    await until(() => c.gateways[0].sim.attached, "the simulator link to the new gateway");
    // The new gateway holds no session for the board: the command waits for the board's next reading.
    await command(a.id, [0x01, 0x00, 0x22]);
    await until(async () => (await db.query("SELECT state FROM commands WHERE device = $1 AND id = 1", [a.id])).rows[0]?.state === "waiting", "the command waiting");
    // The board finds its session gone (its readings go unacknowledged), handshakes again, and is heard.
    await until(() => {
      if (a.b.rt.sender.pending.length === 0) a.b.send(Buffer.from("again"));
      return a.b.commands.length === 2;
    }, "the waiting command, after the board came back", 30_000);
    await command(a.id, [0x01, 0x00, 0x23]);
    await until(() => a.b.commands.length === 3, "the next command");
    await sleep(1000);
    assert.deepEqual(a.b.commands, ["010021", "010022", "010023"]);
    const states = (await db.query("SELECT id, state FROM commands WHERE device = $1 ORDER BY id", [a.id])).rows;
    assert.deepEqual(states, [{ id: 0, state: "acked" }, { id: 1, state: "acked" }, { id: 2, state: "acked" }]);
  });

  it("kill -9 of the controller gateways are on: they fail over, every reading boards saw acknowledged reaches MQTT once, the dead one's are taken over", async () => {
    const term = await Promise.all([board(0), board(0)]);
    const relay = await board(2);
    const all = [...term, relay];
    let sending = true;
    const load = (async () => {
      while (sending) {
        for (const x of all) if (x.b.rt.sender.pending.length < 6) x.b.send(Buffer.from(`t${Date.now()}`));
        await sleep(100);
      }
    })();
    await sleep(2000);
    const relayHandshakes = relay.b.rt.ep.handshakes;
    await c.controllers[0].kill();
    await sleep(5000);
    sending = false;
    await load;
    // Everything sent is acknowledged or given up; then the survivor has had time to take over the rest.
    await until(() => all.every((x) => x.b.rt.sender.pending.length === 0), "the boards settled", 30_000);
    await sleep(LEASE_MS + 2000);
    for (const x of all) {
      const acked = x.b.acknowledged();
      const published = ups(x.id);
      assert.equal(new Set(published).size, published.length, `${x.id}: a reading published twice`);
      const missing = acked.filter((id) => !published.includes(id));
      assert.deepEqual(missing, [], `${x.id}: acknowledged to the board but not on MQTT`);
      assert.ok(acked.length > 10, `${x.id}: too few readings got through (${acked.length})`);
    }
    assert.ok(relay.b.rt.ep.handshakes > relayHandshakes, "the relayed board handshook again, with the other controller");
    await c.controllers[0].start();
  });

  it("routes live in Postgres: after every controller restarted, a command reaches a board heard before", async () => {
    const a = await board(1);
    for (const k of c.controllers) await k.kill();
    for (const k of c.controllers) await k.start();
    await until(() => c.gateways.every((g) => g.sim.attached), "gateways");
    await command(a.id, [0x02, 0x01]);
    await until(() => a.b.commands.length === 1, "the command, with no reading since the restart");
    assert.deepEqual(a.b.commands, ["0201"]);
  });

  it("a device revoked through one controller loses its session at a gateway served by the other", async () => {
    const a = await board(1);
    const res = await c.call(0, "POST", `/v1/devices/${a.id}/revoke`);
    assert.equal(res.status, 200);
    await sleep(3000); // controller 1 reads the registry every 2 s
    const before = ups(a.id).length;
    for (let i = 0; i < 3; i++) a.b.send(Buffer.from(`after ${i}`));
    await sleep(3000);
    assert.equal(ups(a.id).length, before, "readings from a revoked device still reach MQTT");
  });
});
