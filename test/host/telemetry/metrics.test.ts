import assert from "node:assert/strict";
import { createServer } from "node:http";
import { generateToken } from "../../../host/controller/tokens";
import { serveMetrics, telemetryRoutes } from "../../../host/telemetry/metrics-http";
import { Metrics, statusLine } from "../../../host/telemetry/metrics";
import { LATENCY_BUCKETS, bucketIndex, quantileFromBuckets } from "../../../host/telemetry/latency";
import { collectGarbage } from "../../harness/gc";
import { one, parseExposition } from "../../harness/prometheus";

/** Prometheus' histogram_quantile: linear interpolation inside the bucket. */
function histogramQuantile(q: number, buckets: { le: number; count: number }[]): number {
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets[buckets.length - 1].count;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) return b.le === Infinity ? prevLe : prevLe + (b.le - prevLe) * ((rank - prevCount) / (b.count - prevCount));
    prevLe = b.le;
    prevCount = b.count;
  }
  return NaN;
}

const near = (got: number, want: number, rel: number, what: string) => assert.ok(Math.abs(got - want) <= rel * want, `${what}: ${got} not within ${rel * 100}% of ${want}`);

const scrape = generateToken();
const SCRAPERS = [[{ id: "prometheus", sha256: scrape.sha256 }]];
const bearer = { authorization: `Bearer ${scrape.token}` };

describe("metrics", () => {
  it("latency buckets: ten per decade from 1 us to 10 s, le inclusive", () => {
    assert.equal(LATENCY_BUCKETS.length, 71);
    assert.equal(LATENCY_BUCKETS[0], 1e-6);
    assert.equal(LATENCY_BUCKETS[70], 10);
    for (let i = 1; i < LATENCY_BUCKETS.length; i++) assert.ok(LATENCY_BUCKETS[i] / LATENCY_BUCKETS[i - 1] <= 1.28);
    assert.equal(bucketIndex(0.001), LATENCY_BUCKETS.indexOf(0.001));
    assert.equal(bucketIndex(0.0010001), LATENCY_BUCKETS.indexOf(0.00125));
    assert.equal(bucketIndex(11), 71);
    assert.ok(Number.isNaN(quantileFromBuckets(new Float64Array(72), 0.5)));
  });

  it("/metrics over HTTP: parseable text, the names, correct counts, quantiles that match the observations", async () => {
    let now = 1_000_000;
    const metrics = new Metrics({ now: () => now });
    metrics.message("up", "terminate", 20 * 1000, 1000);
    metrics.message("up", "relay", 36, 1);
    metrics.message("down", "terminate", 4);
    // 1 us .. 10 ms, uniform: P50 5 ms, P95 9.5 ms, P99 9.9 ms.
    for (let i = 1; i <= 10_000; i++) metrics.latency("up", "terminate", i * 1e-6);
    metrics.latency("up", "terminate", -1); // a clock step: ignored
    metrics.latency("up", "terminate", NaN);
    metrics.handshake("psk", "ok");
    metrics.handshake("psk", "ok");
    metrics.handshake("dh", "failed");
    metrics.authFailure("tag");
    metrics.authFailure("replay", 2);
    for (let i = 0; i < 5; i++) metrics.keyUse(0);
    metrics.keyUse(1, 7);
    metrics.devicesOnline(12);
    metrics.queueLength("backbone", 3);
    metrics.mqttPublish("up");
    metrics.mqttPublishFailure();
    metrics.mqttDrop("queue-full", 4);
    metrics.mqttCommand("malformed");
    metrics.mqttConnected(true);

    const server = await serveMetrics({ metrics, tokens: SCRAPERS, port: 0 });
    try {
      const res = await fetch(server.url, { headers: bearer });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), metrics.contentType);
      const { samples, types } = parseExposition(await res.text());
      assert.equal(types.get("sesame_message_latency_seconds"), "histogram");
      assert.equal(types.get("sesame_messages_total"), "counter");
      assert.equal(one(samples, "sesame_messages_total", { direction: "up", mode: "terminate" }), 1000);
      assert.equal(one(samples, "sesame_messages_total", { direction: "up", mode: "relay" }), 1);
      assert.equal(one(samples, "sesame_messages_total", { direction: "down", mode: "terminate" }), 1);
      assert.equal(one(samples, "sesame_message_bytes_total", { direction: "up", mode: "terminate" }), 20_000);
      assert.equal(one(samples, "sesame_handshakes_total", { mode: "psk", outcome: "ok" }), 2);
      assert.equal(one(samples, "sesame_handshakes_total", { mode: "dh", outcome: "failed" }), 1);
      assert.equal(one(samples, "sesame_auth_failures_total", { reason: "replay" }), 2);
      assert.equal(one(samples, "sesame_key_records_total", { epoch: "0" }), 5);
      assert.equal(one(samples, "sesame_key_records_total", { epoch: "1" }), 7);
      assert.equal(one(samples, "sesame_devices_online"), 12);
      assert.equal(one(samples, "sesame_queue_length", { queue: "backbone" }), 3);
      assert.equal(one(samples, "sesame_mqtt_published_total", { kind: "up" }), 1);
      assert.equal(one(samples, "sesame_mqtt_publish_failures_total"), 1);
      assert.equal(one(samples, "sesame_mqtt_dropped_total", { reason: "queue-full" }), 4);
      assert.equal(one(samples, "sesame_mqtt_commands_total", { outcome: "malformed" }), 1);
      assert.equal(one(samples, "sesame_mqtt_connected"), 1);
      assert.ok(samples.some((s) => s.name.startsWith("sesame_process_")), "process CPU and memory are exported");

      const lat = { direction: "up", mode: "terminate" };
      assert.equal(one(samples, "sesame_message_latency_seconds_count", lat), 10_000);
      near(one(samples, "sesame_message_latency_seconds_sum", lat), (10_000 * 10_001) / 2 * 1e-6, 1e-9, "sum");
      assert.equal(one(samples, "sesame_message_latency_seconds_bucket", { ...lat, le: "0.001" }), 1000);
      assert.equal(one(samples, "sesame_message_latency_seconds_bucket", { ...lat, le: "+Inf" }), 10_000);
      const buckets = samples.filter((s) => s.name === "sesame_message_latency_seconds_bucket" && s.labels.mode === "terminate")
        .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value }));
      for (const [q, want] of [[0.5, 0.005], [0.95, 0.0095], [0.99, 0.0099]]) {
        near(histogramQuantile(q, buckets), want, 0.03, `histogram_quantile(${q})`);
        near(one(samples, "sesame_message_latency_recent_seconds", { ...lat, quantile: String(q) }), want, 0.03, `recent P${q * 100}`);
      }
    } finally {
      await server.close();
    }

    const snap = metrics.snapshot();
    assert.equal(snap.online, 12);
    assert.equal(snap.messages, 1002);
    assert.equal(snap.handshakes, 3);
    assert.equal(snap.errors, 1 + 3 + 1 + 4 + 1); // failed handshake, auth, publish failure, drops, malformed
    assert.equal(snap.queued, 3);
    near(snap.p50Ms!, 5, 0.03, "snapshot P50");
    near(snap.p99Ms!, 9.9, 0.03, "snapshot P99");
    now += 2000;
    metrics.message("up", "terminate", 0, 100);
    assert.equal(metrics.snapshot().msgsPerSecond, 50);
    assert.match(statusLine(metrics.snapshot()), /^online 12 \| \d+ msg\/s \| p50 5\.\d\d ms  p99 9\.\d\d ms \| handshakes 3 \| errors 10 \| queued 3$/);
    // After the window, the recent quantiles are empty; the cumulative histogram keeps everything.
    now += 61_000;
    const later = metrics.snapshot();
    assert.equal(later.p50Ms, null);
    assert.match(await metrics.text(), /sesame_message_latency_seconds_count\{direction="up",mode="terminate"\} 10000\n/);
    assert.doesNotMatch(await metrics.text(), /sesame_message_latency_recent_seconds\{/);
  });

  it("a Metrics dropped lets go of what its gauges read, process metrics and all (they are the process's, made once)", async () => {
    // What a gateway's gauges read is the gateway itself: before, prom-client's GC observer (never
    // disconnected) held each Metrics' registry, and so every gateway ever made in the process.
    const made = async () => {
      const m = new Metrics();
      const read = { limits: { records: 0.5, forgeries: 0 } };
      m.watchKeyLimits(() => read.limits);
      return { ref: new WeakRef(read), text: await m.text() };
    };
    const refs: WeakRef<object>[] = [];
    const texts: string[] = [];
    for (let k = 0; k < 3; k++) {
      const x = await made(); // (in a function of its own: a suspended async frame may hold its last locals)
      refs.push(x.ref);
      texts.push(x.text);
    }
    for (const t of texts) {
      const { samples } = parseExposition(t);
      assert.equal(one(samples, "sesame_key_limit_ratio", { limit: "records" }), 0.5);
      assert.ok(samples.some((x) => x.name === "sesame_process_process_resident_memory_bytes"), "each Metrics still serves the process's figures");
    }
    await new Promise((r) => setImmediate(r)); // a WeakRef holds its target until the job that made it ends
    collectGarbage();
    collectGarbage();
    assert.equal(refs.filter((r) => r.deref() !== undefined).length, 0, "a dropped Metrics' gauges are still reachable");
  });

  it("the window follows recent latencies", () => {
    let now = 0;
    const m = new Metrics({ now: () => now, processMetrics: false, windowMs: 10_000, windowSlots: 5 });
    for (let i = 0; i < 100; i++) m.latency("up", "relay", 0.1);
    now = 12_000;
    for (let i = 0; i < 100; i++) m.latency("up", "relay", 0.001);
    near(m.snapshot().p99Ms!, 1, 0.13, "only the new millisecond latencies remain");
  });

  it("label values are bounded: junk becomes 'other', epochs beyond the window fold into 'older'", async () => {
    const m = new Metrics({ processMetrics: false, maxEpochs: 3 });
    for (let i = 0; i < 100; i++) m.handshake(`mode-${i}`, `outcome {${i}}`);
    for (let i = 0; i < 100; i++) m.message("up", `junk-${i}`, 1);
    for (let e = 0; e < 6; e++) m.keyUse(e, 10 + e);
    m.keyUse(1, 100); // an old epoch still in use
    m.keyUse(-1);
    m.keyUse(1.5);
    const { samples } = parseExposition(await m.text());
    const modes = new Set(samples.filter((s) => s.name === "sesame_handshakes_total").map((s) => s.labels.mode));
    assert.equal(modes.size, 9);
    assert.ok(modes.has("other"));
    assert.ok(samples.filter((s) => s.name === "sesame_handshakes_total").every((s) => /^[A-Za-z0-9_.:-]+$/.test(s.labels.outcome)));
    assert.equal(samples.filter((s) => s.name === "sesame_messages_total").length, 9);
    assert.equal(one(samples, "sesame_messages_total", { mode: "other" }), 92);
    assert.deepEqual(samples.filter((s) => s.name === "sesame_key_records_total").map((s) => [s.labels.epoch, s.value]), [["older", 10 + 11 + 12 + 100], ["3", 13], ["4", 14], ["5", 15]]);
  });

  it("the routes mount on any node:http server, want a bearer token, and refuse other methods", async () => {
    const m = new Metrics({ processMetrics: false });
    m.devicesOnline(2);
    const routes = telemetryRoutes({ metrics: m, tokens: SCRAPERS });
    const server = createServer((req, res) => routes(req, res) || (res.writeHead(204), res.end()));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      assert.match(await (await fetch(`${base}/metrics`, { headers: bearer })).text(), /^sesame_devices_online 2$/m);
      assert.equal((await fetch(`${base}/other`)).status, 204);
      const post = await fetch(`${base}/metrics`, { method: "POST", headers: bearer });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
      const head = await fetch(`${base}/metrics`, { method: "HEAD", headers: bearer });
      assert.equal(head.status, 200);
      assert.equal((await head.text()).length, 0);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    const standalone = await serveMetrics({ metrics: m, tokens: SCRAPERS, port: 0 });
    try {
      assert.equal((await fetch(standalone.url.replace("/metrics", "/"))).status, 404);
      await assert.rejects(serveMetrics({ metrics: m, tokens: SCRAPERS, port: standalone.port }), /metrics port \d+ on 127.0.0.1 is in use/);
    } finally {
      await standalone.close();
    }
  });
});
