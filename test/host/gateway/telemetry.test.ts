// The device side's telemetry: psk devices handshake with a DeviceGateway whose observer feeds a Metrics,
// then send readings, a forged record, a replay and junk; the Prometheus text and the session events must
// say exactly what happened, and carry no key and no reading.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { encodeData } from "../../../firmware/runtime/messages";
import { Endpoint, epInput, epStart, epTakeOutput } from "../../../firmware/session/endpoint";
import { outboundSeal, SaPolicy } from "../../../firmware/session/sa";
import { sessionSend, type Session } from "../../../firmware/session/session";
import { SUITE_CONSTRAINED } from "../../../firmware/suite";
import { memoryStorage } from "../../../firmware/runtime/facade";
import { hostProvider, nodeKeyPair } from "../../../host/crypto/provider";
import { hostCodec } from "../../../host/record/gpcomp";
import { DeviceGateway } from "../../../host/gateway/devices";
import { KeyTable } from "../../../host/gateway/keytable";
import { GatewayTelemetry, metricsObserver } from "../../../host/gateway/telemetry";
import { Metrics } from "../../../host/telemetry/metrics";
import { one, parseExposition, type Sample } from "../../harness/prometheus";
import { pskDevice } from "../../harness/psk-device";
import { heatshrinkRun } from "../../harness/heatshrink";
import { FLAG_GPCOMP } from "../../../firmware/record/header";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

type Dev = { ep: Endpoint; link: string; id: string; psk: string; next: number };

function world() {
  const store = memoryStorage();
  const policy = (): SaPolicy => ({ suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store, codec: hostCodec, compress: false });
  const keys = new KeyTable();
  const metrics = new Metrics({ processMetrics: false });
  const events: string[] = [];
  const gw = new DeviceGateway({
    config: keys.responders(nodeKeyPair(), policy()), storage: store,
    observer: metricsObserver(metrics, (event, device, spi, link, reason) => events.push([event, device, spi, link, reason ?? ""].join(" "))),
  });
  metrics.watchKeyLimits(() => gw.keyLimits());
  let now = 0;
  const devs: Dev[] = [];
  /** A psk device in order I; registered at the gateway unless `known` is false. */
  const device = (n: number, known = true): Dev => {
    const id = randomBytes(16), psk = randomBytes(32);
    if (known) keys.setPsk(hex(id), { current: Uint8Array.from(psk), previous: undefined });
    const d = { ep: pskDevice(id, psk, policy()), link: `ble:d${n}`, id: hex(id), psk: hex(psk), next: 1 };
    devs.push(d);
    return d;
  };
  /** Everything each side has to send goes to the other, until both are quiet; then the gateway's timers. */
  const exchange = () => {
    now += 10;
    for (let round = 0; round < 6; round++) {
      for (const d of devs) for (const o of epTakeOutput(d.ep)) gw.input(d.link, o.bytes, now);
      for (const o of gw.takeOutput()) for (const d of devs) if (d.link === o.link) epInput(d.ep, o.bytes, 1, now);
    }
    gw.poll(now);
  };
  return { gw, metrics, events, device, devs, exchange, feed: (d: Dev, b: Uint8Array) => gw.input(d.link, b, now) };
}

/** A reading sealed by the device, not through its session's send: the test chooses what reaches the gateway. */
function sealed(d: Dev, body: string): Uint8Array {
  const r = outboundSeal(d.ep.session!.out, encodeData(d.next++, Buffer.from(body)), 0, 0);
  assert.ok(typeof r !== "number");
  return r;
}

const sum = (s: Sample[], name: string) => s.filter((x) => x.name === name).reduce((n, x) => n + x.value, 0);

describe("device-side telemetry", () => {
  it("counts handshakes, auth failures and key use per epoch, reports sessions, and shows no key or reading", async () => {
    const w = world();
    const devs = [0, 1, 2].map((i) => w.device(i));
    for (const d of devs) epStart(d.ep, 0);
    w.exchange();
    assert.ok(devs.every((d) => d.ep.confirmed), "every device has a confirmed session");
    // A hello from a device the gateway does not know (failed), and a handshake-shaped packet of no known type.
    const stranger = w.device(9, false);
    epStart(stranger.ep, 0);
    w.exchange();
    w.feed(stranger, Buffer.concat([Buffer.from([0, 0, 0, 0x7f]), randomBytes(40)]));
    // Readings through the sessions, then a forged one, a replay and a packet for no session.
    for (const d of devs) for (let k = 0; k < 3; k++) assert.ok(sessionSend(d.ep.session!, encodeData(d.next++, Buffer.from(`reading ${k} of ${d.id}`)), 0));
    w.exchange();
    const forged = sealed(devs[0], "forged reading");
    forged[forged.length - 1] ^= 1;
    w.feed(devs[0], forged);
    const twice = sealed(devs[1], "replayed reading");
    w.feed(devs[1], twice);
    w.feed(devs[1], twice);
    w.feed(devs[2], Buffer.concat([Buffer.from([0xff, 0xfe, 0xfd]), randomBytes(20)]));
    w.exchange();
    // Device 0 handshakes again: its first session is replaced once the new one is confirmed.
    const first: Session = devs[0].ep.session!;
    epStart(devs[0].ep, 0);
    w.exchange();
    assert.notEqual(devs[0].ep.session, first);
    w.exchange();

    const text = await w.metrics.registry.metrics();
    const { samples } = parseExposition(text);
    assert.equal(one(samples, "sesame_handshakes_total", { mode: "psk", outcome: "ok" }), devs.length + 1);
    assert.equal(one(samples, "sesame_handshakes_total", { mode: "psk", outcome: "failed" }), 1);
    assert.equal(one(samples, "sesame_handshakes_total", { mode: "psk", outcome: "malformed" }), 1);
    assert.equal(one(samples, "sesame_auth_failures_total", { reason: "tag" }), 1);
    assert.equal(one(samples, "sesame_auth_failures_total", { reason: "replay" }), 1);
    assert.equal(one(samples, "sesame_auth_failures_total", { reason: "unknown-spi" }), 1);
    // Every record the devices sent through their sessions was opened at the gateway (one more: the
    // replayed reading's first copy), and every record they opened the gateway sealed: all under epoch 0.
    const sessions = [...devs.map((d) => d.ep.session!), first];
    const records = sessions.reduce((n, s) => n + s.sent + s.received, 0) + 1;
    assert.equal(one(samples, "sesame_key_records_total", { epoch: "0" }), records);
    assert.equal(samples.filter((s) => s.name === "sesame_key_records_total").length, 1);

    // The status line's figures agree with the counters.
    const snap = w.metrics.snapshot();
    assert.equal(snap.handshakes, sum(samples, "sesame_handshakes_total"));
    assert.equal(snap.errors, snap.handshakes - (devs.length + 1) + sum(samples, "sesame_auth_failures_total"));

    // A session's SPI at the gateway is the one the device's records carry: the device's sending SPI.
    const opened = (d: Dev, s: Session) => `open ${d.id} ${s.out.spi} ${d.link} `;
    assert.deepEqual(w.events, [
      ...devs.map((d, i) => opened(d, i === 0 ? first : d.ep.session!)),
      `close ${devs[0].id} ${first.out.spi} ${devs[0].link} replaced`,
      opened(devs[0], devs[0].ep.session!),
    ]);

    for (const d of [...devs, stranger]) assert.ok(!text.includes(d.psk), "a psk in the metrics");
    assert.ok(!/reading|forged/.test(text), "a reading in the metrics");
  });

  it("shows how close the most used live key is to its limits: forgeries over v, records sealed over q", async () => {
    const w = world();
    const [quiet, attacked] = [w.device(0), w.device(1)];
    for (const d of [quiet, attacked]) epStart(d.ep, 0);
    w.exchange();
    for (let k = 0; k < 3; k++) {
      const forged = sealed(attacked, `forged ${k}`);
      forged[forged.length - 1] ^= 1;
      w.feed(attacked, forged);
    }
    for (let k = 0; k < 4; k++) assert.ok(sessionSend(quiet.ep.session!, encodeData(quiet.next++, Buffer.from(`reading ${k}`)), 0));
    w.exchange();
    const { samples } = parseExposition(await w.metrics.registry.metrics());
    assert.equal(one(samples, "sesame_key_limit_ratio", { limit: "forgeries" }), 3 / SUITE_CONSTRAINED.integrityLimit);
    // The gateway sealed what the devices opened (its CONFIRM and ACKs); the busier session is the ratio.
    const most = Math.max(quiet.ep.session!.received, attacked.ep.session!.received);
    assert.ok(most > 0);
    assert.equal(one(samples, "sesame_key_limit_ratio", { limit: "records" }), most / SUITE_CONSTRAINED.confidentialityLimit);
  });

  it("hands the application a device's GPComp reading decompressed, and counts a compression bomb as gpcomp", async () => {
    const w = world();
    const d = w.device(0);
    epStart(d.ep, 0);
    w.exchange();
    const s = d.ep.session!;
    s.out.policy.compress = true; // the device's own policy: a board with heatshrink
    const body = Buffer.from("t=21.5;h=40%;p=1013;".repeat(5));
    assert.ok(sessionSend(s, encodeData(d.next++, body), 0));
    assert.equal(s.compressed, 1);
    assert.ok(s.saved > body.length / 2, `saved ${s.saved} of ${body.length}`);
    w.exchange();
    assert.deepEqual(w.gw.takeUplinks().map((u) => Buffer.from(u.body).toString()), [body.toString()]);
    const bomb = heatshrinkRun(4096); // 122 bytes
    w.feed(d, outboundSeal(s.out, bomb, FLAG_GPCOMP, 0) as Uint8Array);
    w.exchange();
    assert.deepEqual(w.gw.takeUplinks(), []);
    const { samples } = parseExposition(await w.metrics.registry.metrics());
    assert.equal(one(samples, "sesame_auth_failures_total", { reason: "gpcomp" }), 1);
    assert.equal(sum(samples, "sesame_auth_failures_total"), 1);
  });

  it("reports a device's sessions closed when the gateway ends them", () => {
    const w = world();
    const d = w.device(0);
    epStart(d.ep, 0);
    w.exchange();
    w.exchange();
    assert.equal(w.gw.end(d.id, 1), 1);
    w.exchange();
    const spi = d.ep.session!.out.spi;
    assert.deepEqual(w.events, [`open ${d.id} ${spi} ${d.link} `, `close ${d.id} ${spi} ${d.link} ended`]);
  });

  it("a gateway's counters reach its metrics as deltas: messages each way, drops, the backbone queue", async () => {
    const metrics = new Metrics({ processMetrics: false });
    const stats = { up: 0, down: 0, upBytes: 0, downBytes: 0, dropped: 0, relayedUp: 0, relayedDown: 0 };
    let queued = 0;
    const t = new GatewayTelemetry(metrics, "terminate", stats);
    t.watch(() => queued);
    for (const [up, down, dropped] of [[5, 1, 0], [2, 0, 3], [0, 0, 0]]) {
      stats.up += up;
      stats.upBytes += 20 * up;
      stats.down += down;
      stats.downBytes += 3 * down;
      stats.dropped += dropped;
      queued = stats.up + stats.dropped; // whatever it is at the scrape
      t.sample();
    }
    const { samples } = parseExposition(await metrics.registry.metrics());
    assert.equal(one(samples, "sesame_messages_total", { direction: "up", mode: "terminate" }), stats.up);
    assert.equal(one(samples, "sesame_messages_total", { direction: "down", mode: "terminate" }), stats.down);
    assert.equal(one(samples, "sesame_message_bytes_total", { direction: "up", mode: "terminate" }), stats.upBytes);
    assert.equal(one(samples, "sesame_message_bytes_total", { direction: "down", mode: "terminate" }), stats.downBytes);
    assert.equal(one(samples, "sesame_queue_dropped_total", { queue: "backbone-out" }), stats.dropped);
    assert.equal(one(samples, "sesame_queue_length", { queue: "backbone-out" }), queued);
    assert.equal(metrics.snapshot().errors, stats.dropped);
  });
});
