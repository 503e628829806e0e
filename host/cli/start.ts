// `sesame start` (what `npm start` runs): a controller and a gateway as child processes on the embedded
// defaults, and a fleet of simulated boards (built bundles) in this process, in real time, provisioned
// through the admin API. A live status line shows devices online, messages/s, latency, handshakes, errors;
// Ctrl-C stops everything cleanly. Its state lives in .sesame/start/, made afresh at each start.
import * as fs from "node:fs";
import * as path from "node:path";
import type { BoardProfile } from "../../firmware/board";
import { privateDir, writePrivateFile } from "../controller/private-files";
import { generateToken } from "../controller/tokens";
import { SimLinkClient } from "../gateway/simlink";
import { runFleet } from "../sim/fleet";
import type { Logger } from "../telemetry/log";
import { ensureKeyFile, ensureSecretFile } from "./keyfile";
import { createAppLogin } from "./mqtt-login";
import { CommandSpec, oneOf, port, UsageError, Values } from "./options";
import { CHILD_UP, Supervised } from "./supervise";

export { spawnSesame, type Ready } from "./spawn";

export const START: CommandSpec = {
  name: "start",
  summary: "Runs a controller, a gateway and a fleet of simulated boards on the embedded defaults, with a live status line.",
  options: {
    boards: { type: "string", help: "simulated boards (profiles in turn)", default: "12" },
    mode: { type: "string", help: "gateway mode: terminate or relay", default: "terminate" },
    seconds: { type: "string", help: "stop after this many seconds (default: run until Ctrl-C)" },
    "admin-port": { type: "string", help: "admin API port", default: "8080" },
    "mqtt-port": { type: "string", help: "embedded MQTT broker port", default: "1883" },
    "backbone-port": { type: "string", help: "backbone port", default: "7300" },
    "gateway-metrics-port": { type: "string", help: "the gateway's /metrics and /status port", default: "9464" },
    dir: { type: "string", help: "state directory (emptied at start)", default: ".sesame/start" },
  },
};

export async function runStart(v: Values, log: Logger): Promise<number> {
  const boards = Number(v.boards);
  if (!Number.isInteger(boards) || boards < 1 || boards > 200) throw new UsageError(`--boards ${JSON.stringify(v.boards)}: must be a whole number from 1 to 200`);
  const mode = oneOf(v, "mode", ["terminate", "relay"] as const);
  const seconds = v.seconds === undefined ? undefined : Number(v.seconds);
  if (seconds !== undefined && !(seconds > 0)) throw new UsageError(`--seconds ${JSON.stringify(v.seconds)}: must be a positive number`);
  const dir = path.resolve(String(v.dir));
  fs.rmSync(dir, { recursive: true, force: true });
  privateDir(dir);
  const token = generateToken();
  const scrape = generateToken(); // reads /metrics and /status on both processes, and nothing else
  const gwKey = ensureKeyFile(path.join(dir, "gateway.key")).key;
  const ports = { admin: port(v, "admin-port"), mqtt: port(v, "mqtt-port"), backbone: port(v, "backbone-port"), metrics: port(v, "gateway-metrics-port"), sim: 0 };
  // Both children are supervised: each restart gets the same ports, files and identities as the first run.
  const simSecret = ensureSecretFile(path.join(dir, "sim.secret")).secret;
  const controller = new Supervised("controller", () => ["controller", "--data-dir", path.join(dir, "db"), "--master-key-dir", path.join(dir, "keys"),
    "--key-file", path.join(dir, "controller.key"), "--admin-port", String(ports.admin), "--mqtt-port", String(ports.mqtt),
    "--backbone-port", String(ports.backbone), "--admin-tokens", `start:${token.sha256}`, "--metrics-tokens", `scrape:${scrape.sha256}`, "--gateway", `${gwKey.kid}:${gwKey.public}:${mode}`], log);
  let controllerKey = "";
  const gateway = new Supervised("gateway", () => ["gateway", "--mode", mode, "--controller", `127.0.0.1:${ports.backbone}`, "--controller-key", controllerKey,
    "--key-file", path.join(dir, "gateway.key"), "--sim-port", String(ports.sim), "--sim-secret-file", path.join(dir, "sim.secret"),
    "--metrics-port", String(ports.metrics), "--metrics-tokens", `scrape:${scrape.sha256}`], log);
  const children = [controller, gateway];
  const say = (line: string) => process.stderr.write(`${process.stdout.isTTY ? "\n" : ""}sesame: ${line}\n`);
  for (const c of children) c.on("line", say);
  const stopAll = () => Promise.all(children.map((c) => c.stop()));
  try {
    process.stderr.write("starting the controller...\n");
    const c = await controller.start();
    controllerKey = String(c.public);
    process.stderr.write(`starting the gateway (${mode})...\n`);
    const g = await gateway.start();
    ports.sim = Number(g.simPort); // a restarted gateway listens where the simulator reconnects
    const admin = `http://127.0.0.1:${c.admin}`;
    const gwMetrics = `http://127.0.0.1:${g.metricsPort}`;
    const mqttPort = String(c.mqtt).split(":").pop();
    const app = await createAppLogin(admin, token.token, "sesame start");
    const mqttLogin = `-h 127.0.0.1 -p ${mqttPort} -u ${app.username} -P ${app.password}`;
    process.stdout.write([
      "",
      `sesame is running: controller (admin ${admin}, MQTT ${c.mqtt}), gateway (${mode}), ${boards} simulated boards.`,
      `  console:   ${admin}/console/   (sign in with the admin token below)`,
      `  readings:  mosquitto_sub ${mqttLogin} -t 'sesame/devices/+/up' -v`,
      `  a command: mosquitto_pub ${mqttLogin} -t 'sesame/devices/<id>/down' -m '{"payload":"AgE="}'   (LED on)`,
      `  admin API: curl -H 'authorization: Bearer ${token.token}' ${admin}/v1/devices`,
      `  metrics:   curl -H 'authorization: Bearer ${scrape.token}' ${admin}/metrics   (the gateway's: ${gwMetrics}/metrics, same token)`,
      "The controller and the gateway are supervised: one that dies is restarted. Ctrl-C stops everything.",
      "",
    ].join("\n") + "\n");
    // The same, for scripts (npm run audit) and for finding the token again: readable by this user only.
    writePrivateFile(path.join(dir, "access.json"), JSON.stringify({ admin, console: `${admin}/console/`, token: token.token, metricsToken: scrape.token, mqtt: c.mqtt, mqttUser: app.username, mqttPassword: app.password, gatewayMetrics: gwMetrics, simPort: ports.sim, backbonePort: ports.backbone }, null, 2) + "\n", { overwrite: true });
    const client = new SimLinkClient("127.0.0.1", ports.sim, simSecret);
    let stopping = false;
    const stopSignal = () => (stopping = true);
    process.once("SIGINT", stopSignal);
    process.once("SIGTERM", stopSignal);
    const started = Date.now();
    const status = setInterval(async () => {
      const down = children.filter((k) => k.state !== CHILD_UP).map((k) => `${k.name.toUpperCase()} ${k.state}${k.state === "down" ? ` (restart in ${Math.max(0, Math.ceil((k.restartAt - Date.now()) / 1000))} s)` : ""}`);
      // A part that is down has no numbers to give: the line says which, and what the other still reports.
      const s = (await getJson(`${admin}/status`, scrape.token)) ?? {};
      // In terminate mode handshakes and device-side errors (bad tags, replays) are the gateway's to count.
      const gs = (await getJson(`${gwMetrics}/status`, scrape.token)) ?? {};
      const handshakes = (s.handshakes ?? 0) + (gs.handshakes ?? 0), errors = (s.errors ?? 0) + (gs.errors ?? 0);
      const line = (down.length > 0 ? `${down.join("  ")}  |  ` : "") +
        `online ${s.online ?? 0}/${boards}  ${Math.round(s.msgsPerSecond ?? 0)} msg/s  p50 ${(s.p50Ms ?? 0).toFixed(1)} ms  p99 ${(s.p99Ms ?? 0).toFixed(1)} ms  readings ${s.uplinks ?? 0}  devices ${s.devices ?? 0}  handshakes ${handshakes}  errors ${errors}  gateways ${s.gateways ?? 0}  ${Math.round((Date.now() - started) / 1000)} s`;
      process.stdout.write(process.stdout.isTTY ? `\r${line}\x1b[K` : line + "\n");
      if (seconds !== undefined && Date.now() - started >= seconds * 1000) stopping = true;
    }, 1000);
    const provision = async (p: BoardProfile) => {
      const res = await fetch(`${admin}/v1/devices`, { method: "POST", headers: { authorization: `Bearer ${token.token}`, "content-type": "application/json" }, body: JSON.stringify({ board: p.name }) });
      if (!res.ok) throw new Error(`provisioning ${p.name}: ${res.status} ${await res.text()}`);
      const r = (await res.json()) as { device: { id: string; kid: string | null; mode: string }; config: string };
      return { device: r.device.kid ?? r.device.id, config: r.config };
    };
    await runFleet({ boards, link: "mixed", loss: 0.05, minutes: 24 * 60, seed: Date.now() % 1e6, gateway: client, provision, realtime: { stop: () => stopping }, periodBle: 5, periodLora: 120 });
    clearInterval(status);
    client.close();
    process.stdout.write("\nstopping...\n");
    await stopAll();
    return 0;
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** A JSON answer, or undefined when there is none (the process is down or restarting). */
async function getJson(url: string, token: string): Promise<Record<string, number> | undefined> {
  try {
    const r = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(900) });
    return r.ok ? ((await r.json()) as Record<string, number>) : undefined;
  } catch {
    return undefined;
  }
}
