// No anonymous metrics: /metrics and /status on the gateway's metrics server and on the controller's admin
// port want a bearer token (a metrics token, or on the controller an admin token too), as a Prometheus scrape
// config with `authorization` / `bearer_token_file` sends it; failed attempts are throttled per address
// without locking out a valid token; the controller counts what its listeners shed.
import assert from "node:assert/strict";
import * as net from "node:net";
import { generateToken } from "../../../host/controller/tokens";
import { Metrics } from "../../../host/telemetry/metrics";
import { serveMetrics } from "../../../host/telemetry/metrics-http";
import { silentFlood } from "../../../scripts/lib/flood";
import { one, parseExposition } from "../../harness/prometheus";
import { startStack } from "../../harness/stack";
import { until } from "../../harness/until";

/** An HTTP/1.0 GET (no chunking, one request per connection) from `from`, a loopback address. */
function get(port: number, path: string, headers: Record<string, string> = {}, from = "127.0.0.1"): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1", localAddress: from });
    let got = "";
    s.on("data", (d) => (got += d.toString()));
    s.on("error", reject);
    s.on("close", () => {
      const [head, ...body] = got.split("\r\n\r\n");
      const lines = head.split("\r\n");
      const h = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(lines[0].split(" ")[1]), headers: h, body: body.join("\r\n\r\n") });
    });
    s.write(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`);
  });
}

describe("metrics behind bearer tokens", function () {
  this.timeout(120_000);

  it("the gateway's metrics server: 401 without or with a wrong token, 200 with one; failures throttled per address, never a valid token", async () => {
    const scrape = generateToken();
    const metrics = new Metrics({ processMetrics: false });
    const server = await serveMetrics({ metrics, tokens: [[{ id: "prometheus", sha256: scrape.sha256 }]], port: 0, failures: { burst: 3, perSecond: 0.001 } });
    const ok = { authorization: `Bearer ${scrape.token}` };
    try {
      for (const path of ["/metrics", "/status"]) {
        const none = await get(server.port, path);
        assert.equal(none.status, 401, `${path} without a token`);
        assert.equal(none.headers["www-authenticate"], 'Bearer realm="sesame metrics"');
        assert.ok(!none.body.includes("sesame_"), "an unauthenticated caller got metrics");
      }
      assert.equal((await get(server.port, "/metrics", { authorization: `Bearer ${generateToken().token}` })).status, 401);
      // Three failures spent the address's bucket: further failures get 429, a valid token still gets in.
      const throttled = await get(server.port, "/metrics", { authorization: "Bearer guess" });
      assert.equal(throttled.status, 429);
      assert.ok(Number(throttled.headers["retry-after"]) >= 1);
      const scraped = await get(server.port, "/metrics", ok);
      assert.equal(scraped.status, 200);
      assert.equal(one(parseExposition(scraped.body).samples, "sesame_auth_failures_total", { reason: "metrics-token" }), 4);
      assert.match((await get(server.port, "/status", ok)).body, /"handshakes":0/);
      assert.equal((await get(server.port, "/metrics", {}, "127.0.0.2")).status, 401, "another address has its own bucket");
    } finally {
      await server.close();
    }
  });

  it("the controller: /metrics and /status want a metrics or an admin token, and count what the backbone listener shed", async () => {
    const s = await startStack("terminate");
    const admin = s.ports.admin;
    try {
      for (const path of ["/metrics", "/status"]) assert.equal((await get(admin, path)).status, 401, `${path} without a token`);
      assert.equal((await get(admin, "/metrics", { authorization: `Bearer ${generateToken().token}` })).status, 401);
      assert.equal((await get(admin, "/status", { authorization: `Bearer ${s.adminToken}` })).status, 200, "an admin token");
      // A metrics token reads metrics and nothing else.
      const scraper = { authorization: `Bearer ${s.metricsToken}` };
      assert.equal((await get(admin, "/v1/devices", scraper)).status, 401);
      const flood = silentFlood({ port: s.ports.backbone, from: ["127.0.0.2"], perSecond: 200, maxMs: 30_000 });
      try {
        await until(() => flood.closedByServer > 0, "the backbone shed part of the flood");
      } finally {
        flood.stop();
      }
      const { samples } = parseExposition((await get(admin, "/metrics", scraper)).body);
      assert.ok(one(samples, "sesame_listener_dropped_total", { listener: "backbone", reason: "evicted" }) > 0);
      assert.equal(one(samples, "sesame_listener_dropped_total", { listener: "admin", reason: "over-cap" }), 0);
    } finally {
      await s.close();
    }
  });
});
