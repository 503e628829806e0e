// `sesame controller`: the durable store, admin API, backbone server for gateways, MQTT delivery, metrics.
import * as fs from "node:fs";
import * as path from "node:path";
import { Controller, type GatewayEntry } from "../controller/controller";
import { generateMasterKeyFile } from "../controller/masterkey";
import { Logger } from "../telemetry/log";
import { bytes, ensureKeyFile } from "./keyfile";
import { CommandSpec, port, str, tokensOption, UsageError, Values } from "./options";

export const CONTROLLER: CommandSpec = {
  name: "controller",
  summary: "Runs the controller: device registry and keys, admin API (/v1, /metrics, /status), backbone for gateways, MQTT delivery.",
  options: {
    "data-dir": { type: "string", help: "embedded database directory", default: ".sesame/db" },
    "db-url": { type: "string", help: "postgres://... to use Postgres instead of the embedded database" },
    "master-key-dir": { type: "string", help: "directory of master key files (*.key); one is made if empty and SESAME_MASTER_KEY is unset", default: ".sesame/keys" },
    "key-file": { type: "string", help: "the controller's backbone key pair (made if missing)", default: ".sesame/controller.key" },
    "admin-port": { type: "string", help: "admin API port", default: "8080" },
    "admin-host": { type: "string", help: "admin API address", default: "127.0.0.1" },
    "admin-tokens": { type: "string", help: "id:sha256-of-token,... (sesame token makes one)" },
    "metrics-tokens": { type: "string", help: "id:sha256-of-token,... that may read /metrics and /status only (admin tokens may too)" },
    "backbone-port": { type: "string", help: "port gateways connect to", default: "7300" },
    "mqtt-port": { type: "string", help: "embedded MQTT broker port", default: "1883" },
    "mqtt-url": { type: "string", help: "mqtt://host:port of an external broker instead of the embedded one" },
    gateway: { type: "string", multiple: true, help: "a gateway allowed in: kid:public-key-hex:terminate|relay (repeat, or comma-separate in SESAME_GATEWAY)" },
  },
};

function gatewaysOf(v: Values): GatewayEntry[] {
  const list = (v.gateway as string[] | undefined) ?? [];
  return list.map((g) => {
    const m = /^([0-9a-f]{8}):([0-9a-f]{64}):(terminate|relay)$/.exec(g);
    if (!m) throw new UsageError(`--gateway ${JSON.stringify(g)}: must be kid:public:mode, e.g. 0a1b2c3d:<64 hex digits>:terminate (sesame gateway prints its kid and public key)`);
    return { kid: m[1], publicKey: bytes(m[2]), mode: m[3] as "terminate" | "relay" };
  });
}

export async function runController(v: Values, log: Logger): Promise<Controller> {
  const keyDir = str(v, "master-key-dir");
  const hasKeys = fs.existsSync(keyDir) && fs.readdirSync(keyDir).some((f) => f.endsWith(".key"));
  if (!hasKeys && !process.env.SESAME_MASTER_KEY) {
    const made = generateMasterKeyFile(keyDir);
    log.warn("made a new master key; back it up: without it no device key can be read", { file: made.path, fingerprint: made.key.fingerprint });
  }
  const key = ensureKeyFile(str(v, "key-file"));
  if (key.made) log.info("made the controller's backbone key", { file: path.resolve(str(v, "key-file")), public: key.key.public });
  const tokens = tokensOption(v, "admin-tokens");
  const metricsTokens = tokensOption(v, "metrics-tokens");
  if (tokens.length === 0) log.warn("no admin tokens: every admin API call will be refused (401); sesame token makes one");
  const mqttUrl = v["mqtt-url"] as string | undefined;
  const c = new Controller({
    store: { db: v["db-url"] ? { url: String(v["db-url"]) } : { dataDir: str(v, "data-dir") }, masterKeys: { dir: keyDir } },
    keys: { S: bytes(key.key.public), s: bytes(key.key.secret) },
    gateways: gatewaysOf(v),
    backbone: { port: port(v, "backbone-port") },
    admin: { port: port(v, "admin-port"), host: str(v, "admin-host"), tokens, metricsTokens },
    mqtt: mqttUrl ? { kind: "external", url: mqttUrl } : { kind: "embedded", port: port(v, "mqtt-port") },
    log,
  });
  const ports = await c.start();
  process.stdout.write(JSON.stringify({ ready: "controller", ...ports, public: key.key.public }) + "\n");
  return c;
}
