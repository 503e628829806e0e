// Both HTTP listeners (the controller's admin API, which also serves /metrics and /status, and the
// gateway's metrics server) against the slow, the idle and the many: a real slowloris client (headers one
// byte a second), a socket that never sends a request, and more connections from one address than the cap.
import assert from "node:assert/strict";
import * as net from "node:net";
import { createAdminApi } from "../../../host/controller/admin";
import { MasterKey } from "../../../host/controller/masterkey";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import type { HttpDropped } from "../../../host/net/http-guard";
import { Metrics } from "../../../host/telemetry/metrics";
import { serveMetrics, telemetryRoutes } from "../../../host/telemetry/metrics-http";
import { until } from "../../harness/until";

/** Short deadlines so the test is quick; the defaults (10 s, 30 s, 1 s checks) behave the same, slower. */
const HTTP = { headersTimeoutMs: 2_000, requestTimeoutMs: 4_000, checkIntervalMs: 250, maxPerSource: 4 };

type Raw = { socket: net.Socket; closed: boolean; got: string };

async function raw(port: number, localAddress = "127.0.0.1"): Promise<Raw> {
  const socket = net.connect({ port, host: "127.0.0.1", localAddress });
  const r: Raw = { socket, closed: false, got: "" };
  socket.on("data", (d) => (r.got += d.toString()));
  socket.on("error", () => {});
  socket.on("close", () => (r.closed = true));
  await new Promise<void>((ok) => socket.once("connect", ok).once("close", ok));
  return r;
}

type Target = { name: string; start(): Promise<{ port: number; dropped: HttpDropped; close(): Promise<void> }> };

let store: ControllerStore | undefined;
const TARGETS: Target[] = [
  {
    name: "the controller's admin API",
    async start() {
      store ??= await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
      const metrics = new Metrics({ processMetrics: false });
      const api = createAdminApi({ store, tokens: [], telemetry: telemetryRoutes({ metrics, tokens: [] }), http: HTTP, log: () => {} });
      const a = await api.listen(0);
      return { port: a.port, dropped: api.dropped, close: () => api.close() };
    },
  },
  {
    name: "the gateway's metrics server",
    async start() {
      const m = await serveMetrics({ metrics: new Metrics({ processMetrics: false }), tokens: [], port: 0, http: HTTP });
      return { port: m.port, dropped: m.dropped, close: () => m.close() };
    },
  },
];

describe("HTTP listeners time out the idle and the slow, and cap connections per address", function () {
  this.timeout(60_000);
  const open: Raw[] = [];
  afterEach(() => {
    for (const r of open.splice(0)) r.socket.destroy();
  });
  after(async () => store?.close());

  for (const t of TARGETS) {
    it(`${t.name}: closes a slowloris client (headers one byte a second) and a socket that never sends a request`, async () => {
      const s = await t.start();
      try {
        const idle = await raw(s.port);
        const slow = await raw(s.port);
        open.push(idle, slow);
        const head = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        let sent = 0;
        const drip = setInterval(() => !slow.closed && slow.socket.write(head[sent++] ?? "a"), 1000);
        try {
          // A bound six times the 2 s deadline: Node's default checking interval (30 s) would miss it.
          await until(() => idle.closed && slow.closed, "the server closed both", 12_000);
        } finally {
          clearInterval(drip);
        }
        assert.match(slow.got, /^HTTP\/1\.1 408 /);
        assert.ok(sent < head.length, "the slowloris never finished its headers");
        assert.ok(s.dropped.timeout >= 2, JSON.stringify(s.dropped));
      } finally {
        await s.close();
      }
    });

    it(`${t.name}: past ${HTTP.maxPerSource} connections from one address closes the newcomer at once; another address is still served`, async () => {
      const s = await t.start();
      try {
        const held: Raw[] = [];
        for (let i = 0; i < HTTP.maxPerSource; i++) held.push(await raw(s.port));
        const extra = await raw(s.port);
        open.push(...held, extra);
        await until(() => extra.closed, "the connection over the cap closed", 30_000);
        assert.deepEqual(held.map((h) => h.closed), held.map(() => false), "the connections within the cap were closed first");
        assert.equal(extra.got, "");
        const res = await fetch(`http://127.0.0.1:${s.port}/metrics`).catch((e: Error) => e); // from 127.0.0.1: over the cap too
        assert.ok(res instanceof Error, "a fifth connection from the same address was served");
        const other = await raw(s.port, "127.0.0.2");
        open.push(other);
        other.socket.write("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        await until(() => other.got.includes("\r\n\r\n"), "an answer for the other address");
        assert.match(other.got, /^HTTP\/1\.1 401 /);
        assert.ok(s.dropped["over-cap"] >= 2, JSON.stringify(s.dropped));
      } finally {
        await s.close();
      }
    });
  }
});
