// The gateway's BLE central against a fake adapter and fake boards (test/harness/noble-fake.ts) whose device
// side is the firmware's own BLE link, at the default ATT MTU of 23.
import assert from "node:assert/strict";
import { bleChunkCount } from "../../../firmware/link/ble";
import { BleCentral, NobleLike } from "../../../host/gateway/links/ble-central";
import { Logger } from "../../../host/telemetry/log";
import { FakeNoble, FakePeripheral } from "../../harness/noble-fake";
import { until } from "../../harness/until";

const bytes = (n: number, salt: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + salt) & 0xff);

function central(noble: () => Promise<NobleLike>, poweredOnMs = 2000) {
  const logs: { level: string; msg: string }[] = [];
  const events: string[] = [];
  const packets: { link: string; bytes: Uint8Array; rssi?: number }[] = [];
  const log = Logger.create({ level: "debug", stream: { write: (l: string) => logs.push(JSON.parse(l)) } });
  const c = new BleCentral({ log, noble, poweredOnMs }, {
    input: (link, b, signal) => packets.push({ link, bytes: b, rssi: signal?.rssi }),
    connected: (link) => events.push(`up ${link}`),
    disconnected: (link) => events.push(`down ${link}`),
  });
  return { c, logs, events, packets };
}

describe("BLE central (fake adapter, firmware BLE link on the boards)", () => {
  it("connects to a board offering the sesame service and carries packets both ways in MTU-sized chunks", async () => {
    const noble = new FakeNoble("poweredOn");
    const w = central(async () => noble);
    assert.equal(await w.c.start(), true);
    const board = new FakePeripheral("c0:ff:ee:00:00:01");
    assert.ok(noble.advertise(board));
    const link = "ble:c0:ff:ee:00:00:01";
    await until(() => w.events.includes(`up ${link}`), "connected");
    assert.ok(w.c.owns(link));

    const sizes = [1, 19, 20, 100, 300];
    for (const [i, n] of sizes.entries()) assert.ok(board.deviceSend(bytes(n, i)));
    await until(() => w.packets.length === sizes.length, "every device packet reassembled");
    assert.deepEqual(w.packets.map((p) => p.link), sizes.map(() => link));
    sizes.forEach((n, i) => assert.deepEqual(w.packets[i].bytes, bytes(n, i)));
    assert.deepEqual(w.packets.map((p) => p.rssi), sizes.map(() => -67), "each packet carries the RSSI noble measured");
    assert.equal(board.notifySizes.length, sizes.reduce((a, n) => a + bleChunkCount(n, 23), 0));

    for (const [i, n] of sizes.entries()) assert.ok(w.c.send({ link, bytes: bytes(n, 100 + i) }));
    assert.equal(board.received.length, sizes.length);
    sizes.forEach((n, i) => assert.deepEqual(board.received[i], bytes(n, 100 + i)));
    assert.ok(board.writeSizes.every((s) => s <= 20) && board.writeSizes.length === sizes.reduce((a, n) => a + bleChunkCount(n, 23), 0));
    assert.equal(board.oversize, 0);
    board.rssi = 127; // noble's "not known"
    assert.ok(board.deviceSend(bytes(5, 9)));
    await until(() => w.packets.length === sizes.length + 1, "one more packet");
    assert.equal(w.packets.pop()!.rssi, undefined, "an RSSI noble does not know is left unknown");
  });

  it("forgets a board that disconnects and reconnects it when it is seen again", async () => {
    const noble = new FakeNoble("poweredOn");
    const w = central(async () => noble);
    await w.c.start();
    const board = new FakePeripheral("c0:ff:ee:00:00:02");
    const link = "ble:c0:ff:ee:00:00:02";
    noble.advertise(board);
    await until(() => w.c.owns(link), "connected");
    const scansBefore = noble.scans;
    board.drop();
    assert.deepEqual(w.events, [`up ${link}`, `down ${link}`]);
    assert.equal(w.c.owns(link), false);
    assert.equal(w.c.send({ link, bytes: Uint8Array.of(1) }), false);
    await until(() => noble.scans > scansBefore, "scanning restarted");
    assert.ok(noble.advertise(board));
    await until(() => w.c.owns(link), "reconnected");
    assert.deepEqual(w.events, [`up ${link}`, `down ${link}`, `up ${link}`]);
    // A packet after the reconnection starts a fresh reassembly and arrives whole.
    assert.ok(board.deviceSend(bytes(50, 9)));
    await until(() => w.packets.length === 1, "packet after reconnect");
    assert.deepEqual(w.packets[0].bytes, bytes(50, 9));
    assert.deepEqual([w.c.stats.connects, w.c.stats.disconnects], [2, 1]);
  });

  it("says once that there is no radio when the adapter never powers on, and carries on", async () => {
    const noble = new FakeNoble("poweredOff");
    const w = central(async () => noble, 100);
    assert.equal(await w.c.start(), false);
    const warns = w.logs.filter((l) => l.level === "warn");
    assert.equal(warns.length, 1);
    assert.match(warns[0].msg, /BLE: no radio here \(adapter poweredOff.*carrying on without BLE/);
    assert.equal(noble.scans, 0);
    assert.equal(w.c.send({ link: "ble:any", bytes: Uint8Array.of(1) }), false);
  });

  it("says once that there is no BLE central when the module does not load", async () => {
    const w = central(async () => {
      throw new Error("Cannot find package '@stoprocent/noble'");
    });
    assert.equal(await w.c.start(), false);
    assert.equal(w.logs.length, 1);
    assert.match(w.logs[0].msg, /does not load: Cannot find package.*carrying on without BLE/);
  });
});
