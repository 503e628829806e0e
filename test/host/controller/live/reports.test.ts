// What the controller keeps of its gateways' GATEWAY_STATUS reports (host/controller/live/reports.ts): each
// device's signal under its device id, each gateway's queues, malformed reports counted, and /metrics' gauge
// histogram of devices by RSSI, a fixed number of series whatever the fleet's size.
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { gatewayStatus } from "../../../../host/backbone/gateway-status";
import { GatewayReports } from "../../../../host/controller/live/reports";

const deviceOf = (peer: string) => `dev-${peer}`;

describe("controller: gateway reports", () => {
  it("keeps each device's last signal and each gateway's queues, and counts a malformed report", () => {
    const r = new GatewayReports();
    const body = gatewayStatus({
      backbone: { messages: 2, bytes: 90 }, commands: 1, readings: 0, sessions: 2, dropped: 0, queues: [{ device: "0a", commands: 1, readings: 0 }],
      signals: [{ device: "0a", link: "lora", rssi: -104, snr: -3.5, rssiAvg: -101 }, { device: "0b", link: "ble", rssi: -61, rssiAvg: -63 }],
    }).status;
    assert.equal(r.take("gw1", body, deviceOf, 1_000), true);
    assert.deepEqual(r.signal("dev-0a"), { link: "lora", rssi: -104, rssiAvg: -101, snr: -3.5, gateway: "gw1", at: new Date(1_000).toISOString() });
    assert.deepEqual(r.signal("dev-0b")?.snr, null);
    assert.equal(r.signal("dev-0c"), null);
    assert.deepEqual(r.queues("gw1"), { backbone: { messages: 2, bytes: 90 }, commands: 1, readings: 0, sessions: 2, dropped: 0, queues: [{ device: "dev-0a", commands: 1, readings: 0 }], at: new Date(1_000).toISOString() });
    assert.equal(r.queues("gw2"), null);
    assert.equal(r.take("gw1", Uint8Array.of(1, 2), deviceOf, 2_000), false);
    assert.equal(r.malformed, 1);
    assert.equal(r.queues("gw1")?.at, new Date(1_000).toISOString(), "a malformed report changes nothing");
  });

  it("/metrics: devices by smoothed RSSI, a histogram per link, over recently reported devices only", async () => {
    const r = new GatewayReports();
    let now = 0;
    const registry = new Registry();
    r.register(registry, 60_000, () => now);
    const signals = Array.from({ length: 200 }, (_, i) => ({ device: i.toString(16).padStart(4, "0"), link: (i % 2 === 0 ? "ble" : "lora") as "ble" | "lora", rssi: -45 - (i % 70), rssiAvg: -45 - (i % 70) }));
    r.take("gw", gatewayStatus({ backbone: { messages: 0, bytes: 0 }, commands: 0, readings: 0, sessions: 0, dropped: 0, queues: [], signals }).status, deviceOf, 0);
    const text = await registry.metrics();
    assert.match(text, /^# TYPE sesame_device_rssi_dbm histogram$/m);
    const series = text.split("\n").filter((l) => l.startsWith("sesame_device_rssi_dbm"));
    assert.equal(series.length, 24, "2 links x (10 buckets, sum, count)");
    const value = (name: string, link: string, le?: string) =>
      Number(series.find((l) => l.startsWith(`${name}{`) && l.includes(`link="${link}"`) && (le === undefined || l.includes(`le="${le}"`)))!.split(" ").pop());
    const ble = signals.filter((s) => s.link === "ble");
    assert.equal(value("sesame_device_rssi_dbm_bucket", "ble", "+Inf"), 100);
    assert.equal(value("sesame_device_rssi_dbm_bucket", "lora", "+Inf"), 100);
    assert.equal(value("sesame_device_rssi_dbm_bucket", "ble", "-120"), 0);
    assert.equal(value("sesame_device_rssi_dbm_bucket", "ble", "-40"), 100);
    assert.equal(value("sesame_device_rssi_dbm_bucket", "ble", "-50"), ble.filter((s) => s.rssiAvg <= -50).length);
    assert.equal(value("sesame_device_rssi_dbm_count", "ble"), 100);
    assert.equal(value("sesame_device_rssi_dbm_sum", "ble"), ble.reduce((n, s) => n + s.rssiAvg, 0));
    now = 120_000;
    const later = (await registry.metrics()).split("\n").filter((l) => l.startsWith("sesame_device_rssi_dbm_count{"));
    assert.deepEqual(later.map((l) => l.split(" ").pop()), ["0", "0"], "reports older than the window are not counted");
  });
});
