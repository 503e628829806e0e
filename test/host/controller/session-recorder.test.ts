// Sessions reach the controller's sessions table from whoever holds them: a terminate gateway (SESSION_EVENT
// over the backbone; when it restarts, the new process closes the old ones) or, in relay mode, the
// controller's own responders. The restarted gateway is the CLI's, with --metrics-port: its /metrics and
// /status show its own figures.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { encodeData } from "../../../firmware/runtime/messages";
import { epInput, epTakeOutput } from "../../../firmware/session/endpoint";
import { sessionSend } from "../../../firmware/session/session";
import { runGateway, GATEWAY } from "../../../host/cli/gateway";
import { parseOptions } from "../../../host/cli/options";
import type { SessionRecord } from "../../../host/controller/sessions";
import type { DownPacket } from "../../../host/gateway/devices";
import type { Gateway } from "../../../host/gateway/gateway";
import { generateToken } from "../../../host/controller/tokens";
import { hostProvider } from "../../../host/crypto/provider";
import { Logger, memorySink } from "../../../host/telemetry/log";
import { one, parseExposition } from "../../harness/prometheus";
import { startStack } from "../../harness/stack";
import { handshake, outputOf, provisioned } from "../../harness/stack-devices";
import { until } from "../../harness/until";

describe("sessions reported by their holders", function () {
  this.timeout(60_000);
  const link = "ble:porch";

  it("terminate mode: reach the sessions table and GET /v1/sessions; a restarted gateway closes them; its /metrics shows its figures", async () => {
    const s = await startStack("terminate");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-sessions-"));
    const cliSink = memorySink();
    let stackGateway = true;
    let cli: Awaited<ReturnType<typeof runGateway>> | undefined;
    try {
      const { device, psk, dev } = await provisioned(s);
      // Waited for in the store (the admin API rate-limits pollers), then read once through the API.
      const rowsFor = () => s.controller.store.sessions.list({ deviceId: device.id });
      const sessions = async (): Promise<SessionRecord[]> => {
        const res = await fetch(`http://127.0.0.1:${s.ports.admin}/v1/sessions?device=${device.id}`, { headers: { authorization: `Bearer ${s.adminToken}` } });
        assert.equal(res.status, 200);
        return ((await res.json()) as { sessions: SessionRecord[] }).sessions;
      };

      // Through the stack's gateway (the simulator link): the session is confirmed, then reported.
      await until(() => s.gateway.keys.has(device.id), "the device's keys at the gateway");
      await handshake(dev, link, (b) => s.gateway.input(link, b), outputOf(s.gateway));
      await until(async () => (await rowsFor()).length > 0, "the session row");
      const opened = await sessions();
      assert.equal(opened.length, 1);
      assert.deepEqual(
        { device: opened[0].deviceId, spi: opened[0].spi, gateway: opened[0].gateway, closed: opened[0].closedAt },
        { device: device.id, spi: dev.session!.out.spi, gateway: s.gatewayKey.kid, closed: null },
      );

      // The gateway restarts (the CLI's, same identity): a new run, which holds none of the old sessions.
      stackGateway = false;
      await s.gateway.close();
      const keyFile = path.join(dir, "gateway.key");
      const scrape = generateToken();
      const headers = { authorization: `Bearer ${scrape.token}` };
      fs.writeFileSync(keyFile, JSON.stringify(s.gatewayKey), { mode: 0o600 });
      const v = parseOptions(GATEWAY, [
        "--mode", "terminate", "--controller", `127.0.0.1:${s.ports.backbone}`, "--controller-key", s.controllerKey, "--key-file", keyFile,
        "--sim-port", "off", "--metrics-port", "0", "--metrics-tokens", `prometheus:${scrape.sha256}`,
      ], {});
      const write = process.stdout.write;
      process.stdout.write = (() => true) as typeof write; // its ready line is for a parent process
      try {
        cli = await runGateway(v, Logger.create({ level: "info", stream: cliSink }));
      } finally {
        process.stdout.write = write;
      }
      const gw = cli.gateway;
      await until(() => gw.keys.has(device.id), "the device's keys at the new gateway");
      const take = outputOf(gw);
      await handshake(dev, link, (b) => gw.input(link, b), take); // under the psk its first session evolved
      await until(async () => {
        const r = await rowsFor();
        return r.length === 2 && r[1].closedAt !== null && r[0].closedAt === null;
      }, "the old row closed and the new one open");
      const rows = await sessions();
      assert.equal(rows[1].closeReason, "gateway restarted");
      assert.equal(rows[0].spi, dev.session!.out.spi);

      // A reading, then the restarted gateway's own /metrics and /status.
      const reading = "porch 21.5 C";
      assert.ok(sessionSend(dev.session!, encodeData(1, Buffer.from(reading)), Date.now()));
      for (const o of epTakeOutput(dev)) gw.input(link, o.bytes);
      // Its ACK comes once the controller has published it; then every record either side sealed, the other
      // opened (the CONFIRMs, the reading, the ACK), all under epoch 0.
      let text = "";
      await until(async () => {
        for (const o of take()) if (o.link === link) epInput(dev, o.bytes, 1, Date.now());
        text = await (await fetch(`http://127.0.0.1:${cli!.metrics!.port}/metrics`, { headers })).text();
        const records = parseExposition(text).samples.find((x) => x.name === "sesame_key_records_total" && x.labels.epoch === "0")?.value;
        return dev.session!.received === 2 && records === dev.session!.sent + dev.session!.received;
      }, "the reading and its ACK counted");
      const { samples } = parseExposition(text);
      assert.equal(one(samples, "sesame_messages_total", { direction: "up", mode: "terminate" }), 1);
      assert.equal(one(samples, "sesame_handshakes_total", { mode: "psk", outcome: "ok" }), 1);
      assert.equal(one(samples, "sesame_devices_online"), 1);
      assert.ok(one(samples, "sesame_queue_length", { queue: "backbone-out" }) >= 0);
      const status = (await (await fetch(`http://127.0.0.1:${cli.metrics!.port}/status`, { headers })).json()) as { handshakes: number; online: number };
      const handshakes = samples.filter((x) => x.name === "sesame_handshakes_total").reduce((n, x) => n + x.value, 0);
      assert.deepEqual([status.handshakes, status.online], [handshakes, 1]);

      // Neither the metrics nor any log line carries the device's key or its reading.
      const logs = [...s.sink.lines, ...cliSink.lines].join("\n");
      for (const secret of [psk, Buffer.from(dev.cfg.pskI!.keys.current).toString("hex"), reading, Buffer.from(reading).toString("hex")]) {
        assert.ok(!text.includes(secret) && !logs.includes(secret), "a device key or reading in the metrics or the logs");
      }
    } finally {
      if (stackGateway) await s.gateway.close();
      await cli?.gateway.close();
      await cli?.metrics?.close();
      await s.sim.close();
      await s.controller.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("relay mode: the controller's own responders report the sessions they hold and count their handshakes", async () => {
    const s = await startStack("relay");
    try {
      const { device, dev } = await provisioned(s);
      await until(() => s.controller.keys.has(device.id), "the device's keys at the controller");
      await handshake(dev, link, (b) => s.gateway.input(link, b), outputOf(s.gateway));
      const rowsFor = () => s.controller.store.sessions.list({ deviceId: device.id });
      await until(async () => (await rowsFor()).length > 0, "the session row");
      const rows = await rowsFor();
      assert.deepEqual(rows.map((r) => [r.spi, r.gateway, r.closedAt]), [[dev.session!.out.spi, s.gatewayKey.kid, null]]);
      const { samples } = parseExposition(await (await fetch(`http://127.0.0.1:${s.ports.admin}/metrics`, { headers: { authorization: `Bearer ${s.metricsToken}` } })).text());
      assert.equal(one(samples, "sesame_handshakes_total", { mode: "psk", outcome: "ok" }), 1);
    } finally {
      await s.close();
    }
  });
});
