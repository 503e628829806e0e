// End to end over real sockets: simulated boards (built bundles) -> simulator link (TCP) -> gateway ->
// backbone (TCP, extreme format) -> controller (embedded Postgres, registry-provisioned keys) -> MQTT broker
// -> a subscriber; and a command from MQTT back down to a board. Both gateway modes.
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { SimLinkClient } from "../../host/gateway/simlink";
import { Fleet, runFleet } from "../../host/sim/fleet";
import { ensureBuilt } from "../harness/build-once";
import { startStack } from "../harness/stack";

describe("end to end: boards -> gateway -> controller -> MQTT, and commands back", function () {
  this.timeout(300_000);
  before(async function () {
    const { error } = await ensureBuilt();
    assert.equal(error, undefined, error);
  });

  for (const mode of ["terminate", "relay"] as const) {
    it(`${mode} mode: every board's readings reach an MQTT subscriber; a command reaches its board`, async () => {
      const s = await startStack(mode);
      const sub = await mqtt.connectAsync(s.ports.mqtt, s.mqttLogin);
      const seen = new Map<string, number[]>();
      sub.on("message", (topic, body) => {
        const device = topic.split("/")[2];
        const m = JSON.parse(body.toString()) as { seq: number; payload: string };
        seen.set(device, [...(seen.get(device) ?? []), m.seq]);
      });
      await sub.subscribeAsync("sesame/devices/+/up", { qos: 1 });
      let done = false;
      let fleet: Fleet | undefined;
      const ids: string[] = [];
      const client = new SimLinkClient("127.0.0.1", s.simPort, s.simSecret);
      const run = runFleet({
        boards: 4, link: "mixed", loss: 0, minutes: 5, seed: 3, gateway: client, periodBle: 2, periodLora: 30,
        profiles: ["puckjs", "esp32-espruino", "esp32-nodemcu-lora", "banglejs2"],
        provision: async (p) => {
          const r = await s.controller.store.registry.provision({ board: p.name });
          ids.push(r.device.id);
          // The ESP32 slices its X25519 finely to stay responsive (about a minute a handshake, as on the board);
          // this test is about the pipeline, so the dh board computes in larger slices.
          return { device: r.device.kid ?? r.device.id, config: r.config + (r.device.mode === "dh" ? ";slice=64" : "") };
        },
        realtime: { stop: () => done },
        script: (f) => (fleet = f),
      });
      try {
        const deadline = Date.now() + 120_000;
        while (Date.now() < deadline && (ids.length < 4 || !ids.every((id) => (seen.get(id)?.length ?? 0) >= 1))) await new Promise((r) => setTimeout(r, 200));
        assert.ok(ids.length === 4 && ids.every((id) => (seen.get(id)?.length ?? 0) >= 1), `readings per device: ${ids.map((id) => seen.get(id)?.length ?? 0).join(",")}\n${s.sink.lines.slice(-20).join("\n")}`);
        // A command to the Puck.js (BLE): LED on.
        const puck = ids[0];
        await sub.publishAsync(`sesame/devices/${puck}/down`, JSON.stringify({ payload: Buffer.from([2, 1]).toString("base64") }), { qos: 1 });
        const board = fleet!.boards[0];
        const until = Date.now() + 30_000;
        while (Date.now() < until && Number(board.report().commands ?? 0) < 1) await new Promise((r) => setTimeout(r, 200));
        assert.equal(board.report().commands, "1", "the command did not reach the board");
        for (const id of ids) {
          const seqs = seen.get(id)!;
          assert.equal(new Set(seqs).size, seqs.length, `${id}: a reading was published twice`);
        }
        // Revoking the Puck.js ends its session: nothing more from it reaches MQTT, the others carry on.
        await s.controller.store.registry.revoke(puck);
        await new Promise((r) => setTimeout(r, 3000));
        const at = seen.get(puck)!.length;
        const others = ids.slice(1).map((id) => seen.get(id)!.length);
        await new Promise((r) => setTimeout(r, 8000));
        assert.equal(seen.get(puck)!.length, at, "readings from a revoked device still arrive");
        assert.ok(ids.slice(1, 2).every((id, i) => seen.get(id)!.length > others[i]), "the other devices stopped too");
      } finally {
        done = true;
        await run;
        client.close();
        await sub.endAsync();
        await s.close();
      }
    });
  }
});
