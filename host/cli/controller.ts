// `sesame controller`: the durable store, admin API, backbone server for gateways, MQTT delivery, metrics.
import * as fs from "node:fs";
import * as path from "node:path";
import { Controller, type GatewayEntry } from "../controller/controller";
import { MasterKeyDir } from "../controller/keydir";
import { MasterKey } from "../controller/masterkey";
import { checkBrokerUrl } from "../controller/mqtt-url";
import { Logger } from "../telemetry/log";
import { bytes, ensureKeyFile } from "./keyfile";
import { CommandSpec, intIn, port, str, tokensOption, UsageError, Values } from "./options";

export const CONTROLLER: CommandSpec = {
  name: "controller",
  summary: "Runs the controller: device registry and keys, admin API (/v1, /metrics, /status), backbone for gateways, MQTT delivery.",
  options: {
    "data-dir": { type: "string", help: "embedded database directory", default: ".sesame/db" },
    "db-url": { type: "string", help: "postgres://... to use Postgres instead of the embedded database" },
    "master-key-dir": { type: "string", help: "directory of master key files (*.key), where a rotation keeps its new key; one is made if empty and SESAME_MASTER_KEY is unset (off = SESAME_MASTER_KEY alone, no rotation)", default: ".sesame/keys" },
    "rotation-batch": { type: "string", help: "rows a master-key rotation re-wraps per transaction", default: "100" },
    "rotation-pause-ms": { type: "string", help: "pause after each step of a master-key rotation, so a large re-wrap leaves the database room", default: "0" },
    "key-file": { type: "string", help: "the controller's backbone key pair (made if missing)", default: ".sesame/controller.key" },
    "admin-port": { type: "string", help: "admin API port", default: "8080" },
    "admin-host": { type: "string", help: "admin API address", default: "127.0.0.1" },
    "admin-tokens": { type: "string", help: "id:sha256-of-token,... (sesame token makes one)" },
    "metrics-tokens": { type: "string", help: "id:sha256-of-token,... that may read /metrics and /status only (admin tokens may too)" },
    "backbone-port": { type: "string", help: "port gateways connect to", default: "7300" },
    "backbone-host": { type: "string", help: "address the backbone listens on (0.0.0.0 for gateways on other machines)", default: "127.0.0.1" },
    "mqtt-port": { type: "string", help: "embedded MQTT broker port", default: "1883" },
    "mqtt-url": { type: "string", help: "mqtt://user:password@host:port (or mqtts://) of an external broker instead of the embedded one" },
    "mqtt-ca": { type: "string", help: "CA certificate (PEM) the external broker's certificate must chain to, for mqtts://" },
    "mqtt-cert": { type: "string", help: "client certificate (PEM) for an external broker that asks for one (with --mqtt-key)" },
    "mqtt-key": { type: "string", help: "the client certificate's private key (PEM)" },
    gateway: { type: "string", multiple: true, help: "a gateway allowed in: kid:public-key-hex:terminate|relay (repeat, or comma-separate in SESAME_GATEWAY)" },
    "lease-ms": { type: "string", help: "how long a controller's claim on a reading, or its lease on a gateway, lasts unrenewed: another controller takes over after it", default: "5000" },
    "dedup-minutes": { type: "string", help: "how long published readings are remembered, so a late copy (a gateway's or a device's resend) is not published again", default: "10" },
    "mqtt-share-group": { type: "string", help: "the MQTT 5 shared subscription group the controllers of one cluster take commands in, on an external broker", default: "sesame" },
  },
};

function gatewaysOf(v: Values): GatewayEntry[] {
  // An empty SESAME_GATEWAY (none allowed in yet) is an empty list.
  const list = ((v.gateway as string[] | undefined) ?? []).filter((g) => g !== "");
  return list.map((g) => {
    const m = /^([0-9a-f]{8}):([0-9a-f]{64}):(terminate|relay)$/.exec(g);
    if (!m) throw new UsageError(`--gateway ${JSON.stringify(g)}: must be kid:public:mode, e.g. 0a1b2c3d:<64 hex digits>:terminate (sesame gateway prints its kid and public key)`);
    return { kid: m[1], publicKey: bytes(m[2]), mode: m[3] as "terminate" | "relay" };
  });
}

function shareGroup(v: Values): string {
  const g = str(v, "mqtt-share-group");
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(g)) throw new UsageError(`--mqtt-share-group ${JSON.stringify(g)}: letters, digits, _ and - only (it is a topic level)`);
  return g;
}

/** The PEM file option `k` names, read now so a wrong path is a clear error at start, not a TLS failure later. */
function pemFile(v: Values, k: string): Buffer | undefined {
  const file = v[k] as string | undefined;
  if (file === undefined) return undefined;
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (e) {
    throw new UsageError(`--${k} ${JSON.stringify(file)}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the path of a PEM file`);
  }
  if (!data.includes("-----BEGIN ")) throw new UsageError(`--${k} ${JSON.stringify(file)}: not a PEM file (it has no "-----BEGIN" line)`);
  return data;
}

/** The master key directory, or undefined for "off"; a new key staged in it when there is no key at all. */
function masterKeyDir(v: Values, log: Logger): string | undefined {
  const dir = str(v, "master-key-dir");
  if (dir === "off") {
    if (!process.env.SESAME_MASTER_KEY) throw new UsageError("--master-key-dir off: the master key must then come from SESAME_MASTER_KEY (64 hex characters)");
    return undefined;
  }
  const keys = new MasterKeyDir(dir);
  if (keys.isEmpty() && !process.env.SESAME_MASTER_KEY) {
    // Staged, not yet a key file: it becomes one when the database records it (first start), so a directory
    // pointed at an existing database by mistake does not end up holding a key that database refuses.
    const key = MasterKey.generate();
    keys.stage(key);
    log.warn("made a new master key; back it up: without it no device key can be read", { file: keys.keyFile(key.fingerprint), fingerprint: key.fingerprint });
  }
  return dir;
}

export async function runController(v: Values, log: Logger): Promise<Controller> {
  // Options that name files are checked before anything is made on disk.
  const mqttUrl = v["mqtt-url"] as string | undefined;
  const tls = { ca: pemFile(v, "mqtt-ca"), cert: pemFile(v, "mqtt-cert"), key: pemFile(v, "mqtt-key") };
  if (!mqttUrl && Object.values(tls).some((x) => x !== undefined)) throw new UsageError("--mqtt-ca, --mqtt-cert and --mqtt-key are for an external broker: give --mqtt-url too");
  try {
    if (mqttUrl) checkBrokerUrl(mqttUrl, tls);
  } catch (e) {
    throw new UsageError(`--mqtt-url: ${(e as Error).message}`);
  }
  const keyDir = masterKeyDir(v, log);
  const rotation = { batchSize: intIn(v, "rotation-batch", 1, 100_000, "rows per transaction"), pauseMs: intIn(v, "rotation-pause-ms", 0, 3_600_000, "milliseconds") };
  const key = ensureKeyFile(str(v, "key-file"), log);
  if (key.made) log.info("made the controller's backbone key", { file: path.resolve(str(v, "key-file")), public: key.key.public });
  const tokens = tokensOption(v, "admin-tokens");
  const metricsTokens = tokensOption(v, "metrics-tokens");
  if (tokens.length === 0) log.warn("no admin tokens: every admin API call will be refused (401); sesame token makes one");
  const c = new Controller({
    store: { db: v["db-url"] ? { url: String(v["db-url"]) } : { dataDir: str(v, "data-dir") }, masterKeys: { dir: keyDir }, rotation },
    keys: { S: bytes(key.key.public), s: bytes(key.key.secret) },
    gateways: gatewaysOf(v),
    backbone: { port: port(v, "backbone-port"), host: str(v, "backbone-host") },
    admin: { port: port(v, "admin-port"), host: str(v, "admin-host"), tokens, metricsTokens },
    mqtt: mqttUrl ? { kind: "external", url: mqttUrl, tls, shareGroup: shareGroup(v) } : { kind: "embedded", port: port(v, "mqtt-port") },
    cluster: { leaseMs: intIn(v, "lease-ms", 500, 600_000, "milliseconds"), dedupWindowMs: intIn(v, "dedup-minutes", 1, 10_080, "minutes") * 60_000 },
    log,
  });
  const ports = await c.start();
  process.stdout.write(JSON.stringify({ ready: "controller", ...ports, public: key.key.public }) + "\n");
  return c;
}
