// The stack as a user runs it: `sesame controller` and `sesame gateway` as separate processes, a real
// Mosquitto, simulated boards (built bundles) in real time through the gateway's simulator link.
//   - In relay mode the gateway process never holds a device key or a reading in plaintext: its memory is
//     read whole (/proc/<pid>/mem) and searched; the same search finds them in a terminate-mode gateway.
//   - kill -9 of the gateway and then of the controller under load: devices carry on (same session or a new
//     handshake, by themselves), no (key, nonce) is ever used twice, readings keep reaching MQTT, and every
//     reading a device saw acknowledged reached the MQTT subscriber.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vm from "node:vm";
import mqtt from "mqtt";
import { ensureKeyFile, ensureSecretFile } from "../../host/cli/keyfile";
import { spawnSesame } from "../../host/cli/start";
import { generateToken } from "../../host/controller/tokens";
import { SimLinkClient } from "../../host/gateway/simlink";
import { Fleet, runFleet } from "../../host/sim/fleet";
import { Logger, memorySink } from "../../host/telemetry/log";
import { ensureBuilt } from "../harness/build-once";
import { recordNonce } from "../harness/wiretap";
import { freePort, Mosquitto } from "../harness/mosquitto";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every readable, writable mapping of a process, searched for each needle. */
function memoryHolds(pid: number, needles: Buffer[]): boolean[] {
  const found = needles.map(() => false);
  const fd = fs.openSync(`/proc/${pid}/mem`, "r");
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")) {
      if (!/ rw/.test(line)) continue;
      const [a, b] = line.split(" ")[0].split("-").map((x) => BigInt("0x" + x));
      const len = Number(b - a);
      if (len <= 0 || len > 1 << 30) continue;
      const buf = Buffer.alloc(len);
      try {
        fs.readSync(fd, buf, 0, len, a);
      } catch {
        continue;
      }
      needles.forEach((n, i) => (found[i] ||= buf.indexOf(n) >= 0));
    }
  } finally {
    fs.closeSync(fd);
  }
  return found;
}

async function deployment(mode: "terminate" | "relay", mqttUrl: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-proc-"));
  const log = Logger.create({ level: "error", stream: memorySink() });
  const token = generateToken();
  const gw = ensureKeyFile(path.join(dir, "gateway.key")).key;
  const simSecret = ensureSecretFile(path.join(dir, "sim.secret")).secret;
  const [adminPort, bbPort, simPort] = [await freePort(), await freePort(), await freePort()];
  const procs: { controller?: ChildProcess; gateway?: ChildProcess } = {};
  let ctlPublic = "";
  const startController = async () => {
    const c = spawnSesame(["controller", "--data-dir", path.join(dir, "db"), "--master-key-dir", path.join(dir, "keys"), "--key-file", path.join(dir, "controller.key"),
      "--admin-port", String(adminPort), "--backbone-port", String(bbPort), "--mqtt-url", mqttUrl, "--admin-tokens", `t:${token.sha256}`,
      "--gateway", `${gw.kid}:${gw.public}:${mode}`], "controller", log);
    procs.controller = c.proc;
    ctlPublic = String((await c.ready).public);
  };
  const startGateway = async () => {
    const g = spawnSesame(["gateway", "--mode", mode, "--controller", `127.0.0.1:${bbPort}`, "--controller-key", ctlPublic, "--key-file", path.join(dir, "gateway.key"),
      "--sim-port", String(simPort), "--sim-secret-file", path.join(dir, "sim.secret")], "gateway", log);
    procs.gateway = g.proc;
    await g.ready;
  };
  await startController();
  await startGateway();
  const configs: string[] = [];
  /** Board profile -> the device id MQTT topics carry. */
  const ids = new Map<string, string>();
  const provision = async (p: { name: string }) => {
    const res = await fetch(`http://127.0.0.1:${adminPort}/v1/devices`, { method: "POST", headers: { authorization: `Bearer ${token.token}`, "content-type": "application/json" }, body: JSON.stringify({ board: p.name }) });
    assert.equal(res.status, 201, await res.clone().text());
    const r = (await res.json()) as { device: { id: string; kid: string | null; mode: string }; config: string };
    configs.push(r.config);
    ids.set(p.name, r.device.id);
    return { device: r.device.kid ?? r.device.id, config: r.config + (r.device.mode === "dh" ? ";slice=64" : "") };
  };
  const kill9 = async (which: "controller" | "gateway") => {
    const p = procs[which]!;
    p.kill("SIGKILL");
    await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(undefined) : p.once("exit", r)));
  };
  const close = async () => {
    for (const p of [procs.gateway, procs.controller]) if (p && p.exitCode === null && p.signalCode === null) {
      p.kill("SIGTERM");
      await new Promise((r) => p.once("exit", r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { procs, simPort, simSecret, provision, configs, ids, kill9, startController, startGateway, close };
}

describe("processes: sesame controller + sesame gateway + Mosquitto + simulated boards", function () {
  this.timeout(600_000);
  let broker: Mosquitto;
  before(async function () {
    const { error } = await ensureBuilt();
    assert.equal(error, undefined, error);
    broker = await Mosquitto.start();
  });
  after(async () => broker?.stop());

  for (const mode of ["relay", "terminate"] as const) {
    it(`${mode} gateway memory ${mode === "relay" ? "holds no device key and no plaintext reading" : "(the control) does hold them"}`, async () => {
      const d = await deployment(mode, broker.url);
      const sub = await mqtt.connectAsync(broker.url);
      const payloads: string[] = [];
      sub.on("message", (_t, body) => payloads.push((JSON.parse(body.toString()) as { payload: string }).payload));
      await sub.subscribeAsync("sesame/devices/+/up", { qos: 1 });
      let done = false, fleet: Fleet | undefined;
      const client = new SimLinkClient("127.0.0.1", d.simPort, d.simSecret);
      const run = runFleet({ boards: 2, link: "ble", loss: 0, minutes: 60, seed: 9, gateway: client, provision: d.provision, profiles: ["puckjs", "banglejs2"], periodBle: 2, realtime: { stop: () => done }, script: (f) => (fleet = f) });
      try {
        const marker = randomBytes(16);
        const deadline = Date.now() + 90_000;
        while (Date.now() < deadline && payloads.length < 4) await sleep(200);
        assert.ok(payloads.length >= 4, "readings never arrived");
        const ctx = (fleet!.boards[0] as unknown as { sandbox: { context: vm.Context } }).sandbox.context;
        vm.runInContext(`sesame.send(sesame.fromHex("${marker.toString("hex")}"))`, ctx);
        while (Date.now() < deadline && !payloads.includes(marker.toString("base64"))) await sleep(200);
        assert.ok(payloads.includes(marker.toString("base64")), "the marker reading never reached MQTT");
        const psks = d.configs.map((c) => Buffer.from(/psk=([0-9a-f]{64})/.exec(c)![1], "hex"));
        const found = memoryHolds(d.procs.gateway!.pid!, [...psks, marker]);
        if (mode === "relay") assert.deepEqual(found, psks.map(() => false).concat([false]), "the relay gateway's memory holds a device key or the plaintext");
        else assert.ok(found.slice(0, psks.length).every(Boolean), "the search should find the keys a terminate gateway holds");
      } finally {
        done = true;
        await run;
        client.close();
        await sub.endAsync();
        await d.close();
      }
    });
  }

  it("kill -9 of the gateway, then of the controller, under load: devices carry on by themselves, no nonce is reused, no acknowledged reading is lost", async () => {
    const d = await deployment("terminate", broker.url);
    const sub = await mqtt.connectAsync(broker.url);
    const got: { device: string; seq: number; at: number }[] = [];
    sub.on("message", (t, body) => got.push({ device: t.split("/")[2], seq: (JSON.parse(body.toString()) as { seq: number }).seq, at: Date.now() }));
    await sub.subscribeAsync("sesame/devices/+/up", { qos: 1 });
    const nonces = new Set<string>();
    let reused = 0, records = 0;
    let done = false;
    let fleet: Fleet | undefined;
    const client = new SimLinkClient("127.0.0.1", d.simPort, d.simSecret);
    const run = runFleet({
      boards: 4, link: "ble", loss: 0, minutes: 60, seed: 4, gateway: client, provision: d.provision, profiles: ["puckjs", "banglejs2", "mdbt42q", "esp32-espruino"],
      periodBle: 1, realtime: { stop: () => done }, script: (f) => (fleet = f),
      tap: (_l, p) => {
        const k = recordNonce(p);
        if (k === undefined) return;
        records++;
        if (nonces.has(k)) reused++;
        nonces.add(k);
      },
    });
    const devicesSince = (t: number) => new Set(got.filter((g) => g.at > t).map((g) => g.device)).size;
    const waitAll = async (t: number, what: string) => {
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && devicesSince(t) < 4) await sleep(250);
      assert.equal(devicesSince(t), 4, `${what}: only ${devicesSince(t)} of 4 devices delivered readings; last heard: ${JSON.stringify(Object.fromEntries(got.map((g) => [g.device.slice(0, 8), Math.round((Date.now() - g.at) / 1000)])))}`);
    };
    try {
      await waitAll(0, "at start");
      await d.kill9("gateway");
      await sleep(1500);
      await d.startGateway();
      const t1 = Date.now();
      await waitAll(t1, "after the gateway's kill -9");
      // The broker stalls (SIGSTOP) while readings keep coming, so the controller holds readings it has not
      // published when it dies. Had they been acknowledged (to the gateway, and by it to the devices) as
      // soon as they arrived, they would be lost here.
      broker.pause(true);
      await sleep(3000);
      await d.kill9("controller");
      broker.pause(false);
      await sleep(1500);
      await d.startController();
      const t2 = Date.now();
      await waitAll(t2, "after the controller's kill -9");
      await sleep(8000); // readings held through the outage are acknowledged or given up
      assert.ok(records > 50, `only ${records} records`);
      assert.equal(reused, 0, `${reused} records reused a (key, nonce)`);
      // Every id a device has handed out (from 0: no board restarted) is pending, given up, or acknowledged.
      const acked = fleet!.boards.map((b) => {
        const ctx = (b as unknown as { sandbox: { context: vm.Context } }).sandbox.context;
        const st = JSON.parse(vm.runInContext(
          "(function (r) { return JSON.stringify({ next: r.sender.ids.next, pending: r.sender.pending.map(function (o) { return o.id; }), lost: r.sender.lost.concat(r.lostIds) }); })(sesame.state())",
          ctx,
        ) as string) as { next: number; pending: number[]; lost: number[] };
        const gone = new Set([...st.pending, ...st.lost, ...(fleet!.lostSeen.get(b.name) ?? [])]);
        return { device: d.ids.get(b.profile.name)!, ids: Array.from({ length: st.next }, (_, i) => i).filter((i) => !gone.has(i)) };
      });
      done = true;
      await run;
      await sleep(1000); // what the broker has PUBACKed may still be on its way to the subscriber
      for (const a of acked) {
        const delivered = new Set(got.filter((g) => g.device === a.device).map((g) => g.seq));
        const missing = a.ids.filter((i) => !delivered.has(i));
        assert.ok(a.ids.length >= 5, `${a.device}: only ${a.ids.length} readings acknowledged`);
        assert.deepEqual(missing, [], `${a.device}: ${missing.length} of ${a.ids.length} acknowledged readings never reached MQTT`);
      }
    } finally {
      done = true;
      await run;
      client.close();
      await sub.endAsync();
      await d.close();
    }
  });
});
