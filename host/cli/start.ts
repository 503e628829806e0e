// `sesame start` (what `npm start` runs): a controller and a gateway as child processes on the embedded
// defaults, and a fleet of simulated boards (built bundles) in this process, in real time, provisioned
// through the admin API. A live status line shows devices online, messages/s, latency, handshakes, errors;
// Ctrl-C stops everything cleanly. Its state lives in .sesame/start/, made afresh at each start.
// With --cluster: Postgres and Mosquitto from this machine, two controllers and two gateways
// (./start-cluster.ts), the fleet split between the gateways.
import * as fs from "node:fs";
import * as path from "node:path";
import type { BoardProfile } from "../../firmware/board";
import { privateDir, writePrivateFile } from "../controller/private-files";
import { generateToken } from "../controller/tokens";
import { SimLinkClient } from "../gateway/simlink";
import { runFleet } from "../sim/fleet";
import type { Logger } from "../telemetry/log";
import { ensureKeyFile, ensureSecretFile } from "./keyfile";
import { allocatorEnv } from "./malloc";
import { createAppLogin } from "./mqtt-login";
import { CommandSpec, oneOf, port, UsageError, Values } from "./options";
import { clusterTopology } from "./start-cluster";
import { CHILD_UP, Supervised } from "./supervise";

export { spawnSesame, type Ready } from "./spawn";

export const START: CommandSpec = {
  name: "start",
  summary: "Runs a controller, a gateway and a fleet of simulated boards on the embedded defaults, with a live status line.",
  options: {
    boards: { type: "string", help: "simulated boards (profiles in turn)", default: "12" },
    mode: { type: "string", help: "gateway mode: terminate or relay", default: "terminate" },
    cluster: { type: "boolean", help: "Postgres and Mosquitto from this machine, two controllers and two gateways (ports: the given one and the next)" },
    seconds: { type: "string", help: "stop after this many seconds (default: run until Ctrl-C)" },
    "admin-port": { type: "string", help: "admin API port", default: "8080" },
    "mqtt-port": { type: "string", help: "embedded MQTT broker port (with --cluster: Mosquitto's)", default: "1883" },
    "backbone-port": { type: "string", help: "backbone port", default: "7300" },
    "gateway-metrics-port": { type: "string", help: "the gateway's /metrics and /status port", default: "9464" },
    dir: { type: "string", help: "state directory (emptied at start)", default: ".sesame/start" },
  },
};

/** What runs: the children in start order, where to reach them, and what a cluster adds. */
type Topology = {
  children: Supervised[];
  controllers: Supervised[];
  gateways: Supervised[];
  mqtt: () => string;
  allowApps?: (admin: string, token: string) => Promise<void>;
  cleanup?: () => void;
};

export async function runStart(v: Values, log: Logger): Promise<number> {
  const boards = Number(v.boards);
  if (!Number.isInteger(boards) || boards < 1 || boards > 200) throw new UsageError(`--boards ${JSON.stringify(v.boards)}: must be a whole number from 1 to 200`);
  const mode = oneOf(v, "mode", ["terminate", "relay"] as const);
  const seconds = v.seconds === undefined ? undefined : Number(v.seconds);
  if (seconds !== undefined && !(seconds > 0)) throw new UsageError(`--seconds ${JSON.stringify(v.seconds)}: must be a positive number`);
  let allocator: string;
  try {
    allocator = allocatorEnv(process.env).note;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const dir = path.resolve(String(v.dir));
  fs.rmSync(dir, { recursive: true, force: true });
  privateDir(dir);
  const token = generateToken();
  const scrape = generateToken(); // reads /metrics and /status on every process, and nothing else
  const cluster = v.cluster === true;
  const gwKeys = [0, ...(cluster ? [1] : [])].map((i) => ensureKeyFile(path.join(dir, `gateway${i || ""}.key`)).key);
  const ports = { admin: port(v, "admin-port"), mqtt: port(v, "mqtt-port"), backbone: port(v, "backbone-port"), metrics: port(v, "gateway-metrics-port") };
  // Every child is supervised: each restart gets the same ports, files and identities as the first run.
  const simSecret = ensureSecretFile(path.join(dir, "sim.secret")).secret;
  const simPorts = gwKeys.map(() => 0);
  let controllerKey = "";
  const controllerArgs = ["--master-key-dir", path.join(dir, "keys"), "--key-file", path.join(dir, "controller.key"), "--admin-tokens", `start:${token.sha256}`,
    "--metrics-tokens", `scrape:${scrape.sha256}`, ...gwKeys.flatMap((k) => ["--gateway", `${k.kid}:${k.public}:${mode}`])];
  const gatewayArgs = (i: number, controllers: string) => ["gateway", "--mode", mode, "--controller", controllers, "--controller-key", controllerKey,
    "--key-file", path.join(dir, `gateway${i || ""}.key`), "--sim-port", String(simPorts[i]), "--sim-secret-file", path.join(dir, "sim.secret"),
    "--metrics-port", String(ports.metrics + i), "--metrics-tokens", `scrape:${scrape.sha256}`];
  let t: Topology;
  if (cluster) {
    const c = clusterTopology(dir, ports, log, () => controllerArgs, gatewayArgs);
    t = { children: [c.postgres, c.mosquitto, ...c.controllers, ...c.gateways], controllers: c.controllers, gateways: c.gateways, mqtt: () => c.mqttUrl, allowApps: c.allowApps, cleanup: c.cleanup };
  } else {
    const controller = new Supervised("controller", () => ["controller", "--data-dir", path.join(dir, "db"), "--admin-port", String(ports.admin),
      "--mqtt-port", String(ports.mqtt), "--backbone-port", String(ports.backbone), ...controllerArgs], log);
    const gateway = new Supervised("gateway", () => gatewayArgs(0, `127.0.0.1:${ports.backbone}`), log);
    t = { children: [controller, gateway], controllers: [controller], gateways: [gateway], mqtt: () => String(controller.ready?.mqtt) };
  }
  const say = (line: string) => process.stderr.write(`${process.stdout.isTTY ? "\n" : ""}sesame: ${line}\n`);
  for (const c of t.children) c.on("line", say);
  const stopAll = async () => {
    for (const c of [...t.children].reverse()) await c.stop();
    t.cleanup?.();
  };
  try {
    process.stderr.write(`allocator of the controllers and gateways: ${allocator}\n`);
    // In order (the database and the broker, then the controllers, the first making the keys the others read, then the gateways).
    for (const c of t.children) {
      process.stderr.write(`starting the ${c.name}...\n`);
      const r = await c.start();
      if (t.controllers.includes(c)) controllerKey ||= String(r.public);
      if (t.gateways.includes(c)) simPorts[t.gateways.indexOf(c)] = Number(r.simPort); // a restarted gateway listens where the simulator reconnects
    }
    const admins = t.controllers.map((c) => `http://127.0.0.1:${c.ready!.admin}`);
    const gwMetrics = t.gateways.map((g) => `http://127.0.0.1:${g.ready!.metricsPort}`);
    const mqttUrl = t.mqtt();
    const mqttPort = mqttUrl.split(":").pop();
    const app = await createAppLogin(admins[0], token.token, "sesame start");
    await t.allowApps?.(admins[0], token.token);
    const mqttLogin = `-h 127.0.0.1 -p ${mqttPort} -u ${app.username} -P ${app.password}`;
    process.stdout.write([
      "",
      cluster
        ? `sesame is running as a cluster: Postgres and Mosquitto (${mqttUrl}) from this machine, controllers (admin ${admins.join(", ")}), gateways (${mode}) each knowing both, ${boards} simulated boards.`
        : `sesame is running: controller (admin ${admins[0]}, MQTT ${mqttUrl}), gateway (${mode}), ${boards} simulated boards.`,
      `  console:   ${admins[0]}/console/   (sign in with the admin token below)`,
      `  readings:  mosquitto_sub ${mqttLogin} -t 'sesame/devices/+/up' -v`,
      `  a command: mosquitto_pub ${mqttLogin} -t 'sesame/devices/<id>/down' -m '{"payload":"AgE="}'   (LED on)`,
      `  admin API: curl -H 'authorization: Bearer ${token.token}' ${admins[0]}/v1/devices`,
      `  metrics:   curl -H 'authorization: Bearer ${scrape.token}' ${admins[0]}/metrics   (the gateway's: ${gwMetrics[0]}/metrics, same token)`,
      `Every process is supervised: one that dies is restarted${cluster ? " (kill a controller: its gateway moves to the other)" : ""}. Ctrl-C stops everything.`,
      "",
    ].join("\n") + "\n");
    // The same, for scripts (npm run audit) and for finding the token again: readable by this user only.
    writePrivateFile(path.join(dir, "access.json"), JSON.stringify({
      admin: admins[0], admins, console: `${admins[0]}/console/`, token: token.token, metricsToken: scrape.token, mqtt: mqttUrl, mqttUser: app.username, mqttPassword: app.password,
      gatewayMetrics: gwMetrics[0], simPort: simPorts[0], simPorts, backbonePort: ports.backbone,
    }, null, 2) + "\n", { overwrite: true });
    const clients = simPorts.map((p) => new SimLinkClient("127.0.0.1", p, simSecret));
    let stopping = false;
    const stopSignal = () => (stopping = true);
    process.once("SIGINT", stopSignal);
    process.once("SIGTERM", stopSignal);
    const started = Date.now();
    const status = setInterval(async () => {
      const down = t.children.filter((k) => k.state !== CHILD_UP).map((k) => `${k.name.toUpperCase()} ${k.state}${k.state === "down" ? ` (restart in ${Math.max(0, Math.ceil((k.restartAt - Date.now()) / 1000))} s)` : ""}`);
      // A part that is down has no numbers to give: the line says which, and what the others still report.
      const cs = await Promise.all(admins.map((a) => getJson(`${a}/status`, scrape.token)));
      // In terminate mode handshakes and device-side errors (bad tags, replays) are the gateways' to count.
      const gs = await Promise.all(gwMetrics.map((g) => getJson(`${g}/status`, scrape.token)));
      const sum = (xs: (Record<string, number> | undefined)[], k: string) => xs.reduce((n, x) => n + (x?.[k] ?? 0), 0);
      const up = cs.filter((x) => x !== undefined);
      const pick = (k: string) => (up.length === 0 ? 0 : Math.max(...up.map((x) => x![k] ?? 0)));
      const line = (down.length > 0 ? `${down.join("  ")}  |  ` : "") +
        `online ${pick("online")}/${boards}  ${Math.round(sum(cs, "msgsPerSecond"))} msg/s  p50 ${pick("p50Ms").toFixed(1)} ms  p99 ${pick("p99Ms").toFixed(1)} ms  readings ${sum(cs, "uplinks")}  devices ${pick("devices")}  ` +
        `handshakes ${sum(cs, "handshakes") + sum(gs, "handshakes")}  errors ${sum(cs, "errors") + sum(gs, "errors")}  gateways ${sum(cs, "gateways")}` +
        (cluster ? `  copies ${sum(cs, "duplicates")}  taken over ${sum(cs, "takenOver")}` : "") + `  ${Math.round((Date.now() - started) / 1000)} s`;
      process.stdout.write(process.stdout.isTTY ? `\r${line}\x1b[K` : line + "\n");
      if (seconds !== undefined && Date.now() - started >= seconds * 1000) stopping = true;
    }, 1000);
    const provision = async (p: BoardProfile) => {
      const res = await fetch(`${admins[0]}/v1/devices`, { method: "POST", headers: { authorization: `Bearer ${token.token}`, "content-type": "application/json" }, body: JSON.stringify({ board: p.name }) });
      if (!res.ok) throw new Error(`provisioning ${p.name}: ${res.status} ${await res.text()}`);
      const r = (await res.json()) as { device: { id: string; kid: string | null; mode: string }; config: string };
      return { device: r.device.kid ?? r.device.id, config: r.config };
    };
    // The fleet split between the gateways (one fleet each, its boards on that gateway's links).
    await Promise.all(clients.map((client, i) => {
      const n = Math.floor(boards / clients.length) + (i < boards % clients.length ? 1 : 0);
      return runFleet({ boards: n, link: "mixed", loss: 0.05, minutes: 24 * 60, seed: (Date.now() + i) % 1e6, gateway: client, provision, realtime: { stop: () => stopping }, periodBle: 5, periodLora: 120 });
    }));
    clearInterval(status);
    for (const client of clients) client.close();
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
