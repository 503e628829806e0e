// A cluster as an operator runs one, for tests: `sesame controller` processes on one real Postgres and one
// real Mosquitto, sharing the master key directory and the backbone key file, and `sesame gateway` processes
// that know every controller. Every process can be killed (SIGKILL) and started again on its ports.
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureKeyFile, ensureSecretFile } from "../../host/cli/keyfile";
import { spawnSesame, type Ready } from "../../host/cli/start";
import { generateToken } from "../../host/controller/tokens";
import { SimLinkClient } from "../../host/gateway/simlink";
import { Logger, memorySink } from "../../host/telemetry/log";
import { freePort } from "./mosquitto";

export type Proc = {
  name: string;
  proc: ChildProcess | undefined;
  ready: Ready | undefined;
  /** Starts it (again, on the same ports and files). */
  start(): Promise<Ready>;
  /** SIGKILL, and its exit. */
  kill(): Promise<void>;
  /** SIGTERM, and its exit. */
  stop(): Promise<void>;
};

export type ClusterGateway = Proc & { mode: "terminate" | "relay"; kid: string; sim: SimLinkClient };

const log = Logger.create({ level: "error", stream: memorySink() });

function proc(name: string, args: () => string[]): Proc {
  const p: Proc = {
    name, proc: undefined, ready: undefined,
    async start() {
      const s = spawnSesame(args(), name, log);
      p.proc = s.proc;
      p.ready = await s.ready;
      return p.ready;
    },
    async kill() {
      await end(p.proc, "SIGKILL");
    },
    async stop() {
      await end(p.proc, "SIGTERM");
    },
  };
  return p;
}

async function end(c: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once("exit", r));
  c.kill(signal);
  await gone;
}

export type ClusterOptions = {
  dbUrl: string;
  mqttUrl: string;
  controllers: number;
  /** Per gateway: its mode, and the order it knows the controllers in (indexes); host:port overrides for a proxy. */
  gateways: { mode: "terminate" | "relay"; order: number[]; via?: (i: number, port: number) => string }[];
  /** Extra controller arguments (a short --lease-ms for a test). */
  controllerArgs?: string[];
  /** Gateway identities the controllers let in (terminate mode) that no process here uses: for a test's own backbone clients. */
  identities?: number;
};

export async function startCluster(o: ClusterOptions) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-cluster-"));
  const token = generateToken();
  const gwKeys = o.gateways.map((_, i) => ensureKeyFile(path.join(dir, `gateway${i}.key`)).key);
  const identities = Array.from({ length: o.identities ?? 0 }, (_, i) => ensureKeyFile(path.join(dir, `identity${i}.key`)).key);
  const simSecret = ensureSecretFile(path.join(dir, "sim.secret")).secret;
  const ports = { admin: [] as number[], backbone: [] as number[], sim: [] as number[] };
  for (let i = 0; i < o.controllers; i++) ports.admin.push(await freePort()), ports.backbone.push(await freePort());
  for (let i = 0; i < o.gateways.length; i++) ports.sim.push(await freePort());
  // Every controller: the same database, broker, master key directory and backbone key file.
  const controllers = ports.admin.map((admin, i) => proc(`controller${i}`, () => [
    "controller", "--db-url", o.dbUrl, "--mqtt-url", o.mqttUrl, "--master-key-dir", path.join(dir, "keys"), "--key-file", path.join(dir, "controller.key"),
    "--admin-port", String(admin), "--backbone-port", String(ports.backbone[i]), "--admin-tokens", `t:${token.sha256}`,
    ...o.gateways.flatMap((g, k) => ["--gateway", `${gwKeys[k].kid}:${gwKeys[k].public}:${g.mode}`]),
    ...identities.flatMap((k) => ["--gateway", `${k.kid}:${k.public}:terminate`]), ...(o.controllerArgs ?? []),
  ]));
  // One at a time: the first makes the master key and the backbone key file the others then read.
  for (const c of controllers) await c.start();
  const controllerKey = String(controllers[0].ready!.public);
  const gateways: ClusterGateway[] = o.gateways.map((g, i) => {
    const list = g.order.map((c) => g.via?.(c, ports.backbone[c]) ?? `127.0.0.1:${ports.backbone[c]}`).join(",");
    const p = proc(`gateway${i}`, () => ["gateway", "--mode", g.mode, "--controller", list, "--controller-key", controllerKey,
      "--key-file", path.join(dir, `gateway${i}.key`), "--sim-port", String(ports.sim[i]), "--sim-secret-file", path.join(dir, "sim.secret")]);
    return Object.assign(p, { mode: g.mode, kid: gwKeys[i].kid, sim: new SimLinkClient("127.0.0.1", ports.sim[i], simSecret) });
  });
  for (const g of gateways) await g.start();
  const admin = (i: number) => `http://127.0.0.1:${ports.admin[i]}`;
  return {
    dir, controllers, gateways, ports, admin, identities, controllerKey,
    /** A board's configuration from controller `via`'s admin API, and the device id MQTT topics carry. */
    async provision(board = "puckjs", via = 0): Promise<{ id: string; config: string }> {
      let res: Response;
      // The admin API's per-token rate limit (10/s) paces a large fleet: wait as it says, then again.
      while ((res = await fetch(`${admin(via)}/v1/devices`, { method: "POST", headers: { authorization: `Bearer ${token.token}`, "content-type": "application/json" }, body: JSON.stringify({ board }) })).status === 429) {
        await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get("retry-after") ?? 1)));
      }
      if (res.status !== 201) throw new Error(`provisioning: ${res.status} ${await res.text()}`);
      const r = (await res.json()) as { device: { id: string }; config: string };
      return { id: r.device.id, config: r.config };
    },
    /** An admin API call on controller `via`. */
    async call(via: number, method: string, route: string): Promise<Response> {
      return fetch(`${admin(via)}${route}`, { method, headers: { authorization: `Bearer ${token.token}` } });
    },
    /** /status of controller `i` (undefined while it is down). */
    async status(i: number): Promise<Record<string, number> | undefined> {
      try {
        const r = await fetch(`${admin(i)}/status`, { headers: { authorization: `Bearer ${token.token}` }, signal: AbortSignal.timeout(2000) });
        return r.ok ? ((await r.json()) as Record<string, number>) : undefined;
      } catch {
        return undefined;
      }
    },
    async close() {
      for (const g of gateways) g.sim.close();
      for (const p of [...gateways, ...controllers]) await p.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type Cluster = Awaited<ReturnType<typeof startCluster>>;
