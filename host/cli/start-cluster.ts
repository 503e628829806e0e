// `sesame start --cluster`: the deployment of docs/CONTROLLER.md "Cluster" on one machine, for trying it:
// Postgres and Mosquitto from this machine (./local-servers.ts says what to install when they are missing),
// two controllers sharing them (and the master key directory and the backbone key file), two gateways that
// each know both controllers, the first preferring one, the second the other. Every process is supervised
// (./supervise.ts) like the rest of `sesame start`.
//
// No door without a lock, here too: Postgres listens only on a unix socket in a directory only its user can
// enter; Mosquitto on 127.0.0.1 lets no one in without a login (the controllers' user, and the applications'
// credentials exported from the admin API, reloaded with SIGHUP).
import { createHash } from "node:crypto";
import { chownSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import pg from "pg";
import { hashMqttPassword, newMqttPassword } from "../controller/mqtt-password";
import { privateDir, writePrivateFile } from "../controller/private-files";
import type { Logger } from "../telemetry/log";
import { findMosquitto, findPostgresBin, initPostgres, POSTGRES_ENV, postgresUser, serverLauncher } from "./local-servers";
import { Supervised } from "./supervise";

const ROOT = path.resolve(import.meta.dirname, "../..");
const CONTROLLER_USER = "sesame-controller";

export type ClusterPorts = { admin: number; mqtt: number; backbone: number; metrics: number };

/** One process per part; `admins` and `metrics` are the controllers' and the gateways' HTTP ports in order. */
export type ClusterTopology = {
  postgres: Supervised; mosquitto: Supervised; controllers: Supervised[]; gateways: Supervised[];
  mqttUrl: string;
  /** Lets the applications' credentials (the admin API's export) into the broker. */
  allowApps(admin: string, token: string): Promise<void>;
  /** Removes what lives outside the state directory (Postgres's data). */
  cleanup(): void;
};

/**
 * The processes of the cluster; nothing started yet. `args(i)`: the arguments every controller gets besides
 * its ports, database and broker (tokens, gateways, key files); `gatewayArgs(i, controllers)` likewise.
 */
export function clusterTopology(dir: string, ports: ClusterPorts, log: Logger, args: (i: number) => string[], gatewayArgs: (i: number, controllers: string) => string[]): ClusterTopology {
  const pgBin = findPostgresBin();
  const mosquittoBin = findMosquitto();
  // Postgres's directory must be its user's (under root, the postgres user cannot enter this state directory).
  const user = postgresUser();
  // Emptied at each start, as the state directory is (a `sesame start` killed outright leaves it behind).
  const pgDir = postgresDirFor(dir);
  rmSync(pgDir, { recursive: true, force: true });
  mkdirSync(pgDir, { mode: 0o700 });
  try {
    return topology(dir, ports, log, args, gatewayArgs, pgBin, mosquittoBin, user, pgDir);
  } catch (e) {
    rmSync(pgDir, { recursive: true, force: true });
    throw e;
  }
}

function topology(
  dir: string, ports: ClusterPorts, log: Logger, args: (i: number) => string[], gatewayArgs: (i: number, controllers: string) => string[],
  pgBin: string, mosquittoBin: string, user: { uid?: number; gid?: number }, pgDir: string,
): ClusterTopology {
  if (user.uid !== undefined) chownSync(pgDir, user.uid, user.gid!);
  initPostgres(pgBin, path.join(pgDir, "data"), pgDir, user);
  const dbUrl = `postgres://postgres@localhost/postgres?host=${encodeURIComponent(pgDir)}`;
  const postgres = new Supervised("postgres", () => ["-D", path.join(pgDir, "data"), "-k", pgDir, "-c", "listen_addresses=", "-c", "fsync=off"], log, {},
    serverLauncher(path.join(pgBin, "postgres"), { user, env: POSTGRES_ENV, cwd: pgDir, ready: () => accepts(dbUrl) }));

  const mqDir = path.join(dir, "mosquitto");
  privateDir(mqDir);
  const password = newMqttPassword();
  const controllerAcl = readFileSync(path.join(ROOT, "deploy/mosquitto/acl"), "utf8");
  const writeLogins = (apps: { passwordFile: string; aclFile: string } = { passwordFile: "", aclFile: "" }) => {
    writePrivateFile(path.join(mqDir, "passwd"), `${CONTROLLER_USER}:${hashMqttPassword(password)}\n${apps.passwordFile}`, { overwrite: true });
    writePrivateFile(path.join(mqDir, "acl"), `${controllerAcl}\n${apps.aclFile}`, { overwrite: true });
  };
  writeLogins();
  // The limits of deploy/mosquitto/mosquitto.conf, on 127.0.0.1 without TLS (this machine only).
  writePrivateFile(path.join(mqDir, "mosquitto.conf"), [
    ...(process.getuid?.() === 0 ? ["user root"] : []), "per_listener_settings false", "allow_anonymous false", `password_file ${path.join(mqDir, "passwd")}`,
    `acl_file ${path.join(mqDir, "acl")}`, `listener ${ports.mqtt} 127.0.0.1`, "max_packet_size 16384", "retain_available false", "max_keepalive 3600",
    "max_queued_messages 1000", "persistence false", "log_dest stderr", "log_type error", "",
  ].join("\n"), { overwrite: true });
  const mosquitto = new Supervised("mosquitto", () => ["-c", path.join(mqDir, "mosquitto.conf")], log, {},
    serverLauncher(mosquittoBin, { ready: () => listening(ports.mqtt) }));

  // The controllers' broker password goes to them in their environment, not on their command line (which
  // every user of the machine can read); their children inherit it from this process.
  process.env.SESAME_MQTT_URL = `mqtt://${CONTROLLER_USER}:${password}@127.0.0.1:${ports.mqtt}`;
  const backbones = [0, 1].map((i) => `127.0.0.1:${ports.backbone + i}`);
  const controllers = [0, 1].map((i) => new Supervised(`controller ${i + 1}`, () => ["controller", "--db-url", dbUrl,
    "--admin-port", String(ports.admin + i), "--backbone-port", String(ports.backbone + i), ...args(i)], log));
  const gateways = [0, 1].map((i) => new Supervised(`gateway ${i + 1}`, () => gatewayArgs(i, (i === 0 ? backbones : [...backbones].reverse()).join(",")), log));
  return {
    postgres, mosquitto, controllers, gateways, mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`,
    async allowApps(admin, token) {
      const res = await fetch(`${admin}/v1/mqtt/mosquitto`, { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw new Error(`exporting the MQTT credentials: ${res.status} ${await res.text()}`);
      writeLogins((await res.json()) as { passwordFile: string; aclFile: string });
      if (mosquitto.pid !== undefined) process.kill(mosquitto.pid, "SIGHUP");
    },
    cleanup: () => rmSync(pgDir, { recursive: true, force: true }),
  };
}

/** Where Postgres keeps its data for the state directory `dir` (outside it: under root, Postgres's user could not enter it). */
export function postgresDirFor(dir: string): string {
  return path.join(tmpdir(), `sesame-start-pg-${createHash("sha256").update(path.resolve(dir)).digest("hex").slice(0, 12)}`);
}

async function accepts(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url });
  try {
    await c.connect();
    await c.query("SELECT 1");
    return true;
  } finally {
    await c.end().catch(() => {});
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ port, host: "127.0.0.1" });
    c.once("connect", () => (c.destroy(), resolve(true)));
    c.once("error", () => resolve(false));
  });
}
