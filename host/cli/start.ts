// `sesame start` (what `npm start` runs): a controller and a gateway as child processes on the embedded
// defaults, and a fleet of simulated boards (built bundles) in this process, in real time, provisioned
// through the admin API. A live status line shows devices online, messages/s, latency, handshakes, errors;
// Ctrl-C stops everything cleanly. Its state lives in .sesame/start/, made afresh at each start.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";
import type { BoardProfile } from "../../firmware/board";
import { generateToken } from "../controller/tokens";
import { SimLinkClient } from "../gateway/simlink";
import { runFleet } from "../sim/fleet";
import type { Logger } from "../telemetry/log";
import { ensureKeyFile, ensureSecretFile } from "./keyfile";
import { CommandSpec, oneOf, port, UsageError, Values } from "./options";

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

const ROOT = path.resolve(import.meta.dirname, "../..");

export type Ready = Record<string, string | number>;

/** A `sesame <command>` child process, and its ready line (the JSON it prints once listening). */
export function spawnSesame(args: string[], name: string, log: Logger): { proc: ChildProcess; ready: Promise<Ready> } {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "host/cli/main.ts"), ...args], {
    cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SESAME_LOG_LEVEL: process.env.SESAME_LOG_LEVEL ?? "warn" },
  });
  const ready = new Promise<Ready>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      try {
        const m = JSON.parse(line) as Ready;
        if (m.ready) resolve(m);
      } catch {
        /* not the ready line */
      }
    });
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      // Only their errors: warnings (a gateway reconnecting, a refused call) would bury the status line.
      for (const l of d.toString().split("\n")) if (l.includes('"level":"error"')) log.error(`${name}: ${l.slice(0, 300)}`);
    });
    proc.on("exit", (code) => reject(new Error(`${name} exited (${code}) before it was ready: ${err.trim().split("\n").slice(-3).join(" / ")}`)));
  });
  return { proc, ready };
}

export async function runStart(v: Values, log: Logger): Promise<number> {
  const boards = Number(v.boards);
  if (!Number.isInteger(boards) || boards < 1 || boards > 200) throw new UsageError(`--boards ${JSON.stringify(v.boards)}: must be a whole number from 1 to 200`);
  const mode = oneOf(v, "mode", ["terminate", "relay"] as const);
  const seconds = v.seconds === undefined ? undefined : Number(v.seconds);
  if (seconds !== undefined && !(seconds > 0)) throw new UsageError(`--seconds ${JSON.stringify(v.seconds)}: must be a positive number`);
  const dir = path.resolve(String(v.dir));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const token = generateToken();
  const scrape = generateToken(); // reads /metrics and /status on both processes, and nothing else
  const gwKey = ensureKeyFile(path.join(dir, "gateway.key")).key;
  const simSecret = ensureSecretFile(path.join(dir, "sim.secret")).secret;
  const kids: ChildProcess[] = [];
  const stopAll = async () => {
    for (const k of kids) if (k.exitCode === null) k.kill("SIGTERM");
    await Promise.all(kids.map((k) => (k.exitCode === null ? new Promise((r) => k.once("exit", r)) : undefined)));
  };
  try {
    process.stderr.write("starting the controller...\n");
    const ctl = spawnSesame(["controller", "--data-dir", path.join(dir, "db"), "--master-key-dir", path.join(dir, "keys"), "--key-file", path.join(dir, "controller.key"),
      "--admin-port", String(port(v, "admin-port")), "--mqtt-port", String(port(v, "mqtt-port")), "--backbone-port", String(port(v, "backbone-port")),
      "--admin-tokens", `start:${token.sha256}`, "--metrics-tokens", `scrape:${scrape.sha256}`, "--gateway", `${gwKey.kid}:${gwKey.public}:${mode}`], "controller", log);
    kids.push(ctl.proc);
    const c = await ctl.ready;
    process.stderr.write(`starting the gateway (${mode})...\n`);
    const gw = spawnSesame(["gateway", "--mode", mode, "--controller", `127.0.0.1:${c.backbone}`, "--controller-key", String(c.public), "--key-file", path.join(dir, "gateway.key"), "--sim-port", "0",
      "--sim-secret-file", path.join(dir, "sim.secret"), "--metrics-port", String(port(v, "gateway-metrics-port")), "--metrics-tokens", `scrape:${scrape.sha256}`], "gateway", log);
    kids.push(gw.proc);
    const g = await gw.ready;
    const admin = `http://127.0.0.1:${c.admin}`;
    const gwMetrics = `http://127.0.0.1:${g.metricsPort}`;
    const mqttPort = String(c.mqtt).split(":").pop();
    process.stdout.write([
      "",
      `sesame is running: controller (admin ${admin}, MQTT ${c.mqtt}), gateway (${mode}), ${boards} simulated boards.`,
      `  readings:  mosquitto_sub -h 127.0.0.1 -p ${mqttPort} -t 'sesame/devices/+/up' -v`,
      `  a command: mosquitto_pub -h 127.0.0.1 -p ${mqttPort} -t 'sesame/devices/<id>/down' -m '{"payload":"AgE="}'   (LED on)`,
      `  admin API: curl -H 'authorization: Bearer ${token.token}' ${admin}/v1/devices`,
      `  metrics:   curl -H 'authorization: Bearer ${scrape.token}' ${admin}/metrics   (the gateway's: ${gwMetrics}/metrics, same token)`,
      "Ctrl-C stops everything.",
      "",
    ].join("\n") + "\n");
    const client = new SimLinkClient("127.0.0.1", Number(g.simPort), simSecret);
    let stopping = false;
    const stopSignal = () => (stopping = true);
    process.once("SIGINT", stopSignal);
    process.once("SIGTERM", stopSignal);
    const started = Date.now();
    const status = setInterval(async () => {
      try {
        const headers = { authorization: `Bearer ${scrape.token}` };
        const s = (await (await fetch(`${admin}/status`, { headers })).json()) as Record<string, number>;
        // In terminate mode handshakes and device-side errors (bad tags, replays) are the gateway's to count.
        const gs = (await fetch(`${gwMetrics}/status`, { headers }).then((r) => r.json(), () => ({}))) as Record<string, number>;
        const handshakes = (s.handshakes ?? 0) + (gs.handshakes ?? 0), errors = (s.errors ?? 0) + (gs.errors ?? 0);
        const line = `online ${s.online ?? 0}/${boards}  ${Math.round(s.msgsPerSecond ?? 0)} msg/s  p50 ${(s.p50Ms ?? 0).toFixed(1)} ms  p99 ${(s.p99Ms ?? 0).toFixed(1)} ms  readings ${s.uplinks ?? 0}  devices ${s.devices ?? 0}  handshakes ${handshakes}  errors ${errors}  gateways ${s.gateways ?? 0}  ${Math.round((Date.now() - started) / 1000)} s`;
        process.stdout.write(process.stdout.isTTY ? `\r${line}\x1b[K` : line + "\n");
      } catch {
        /* the controller is stopping */
      }
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
