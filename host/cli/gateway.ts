// `sesame gateway`: device links (the simulator's link, and a BLE central or a LoRa serial modem when the
// machine has them) to the controller's backbone, in terminate or relay mode.
import * as path from "node:path";
import { Gateway } from "../gateway/gateway";
import { SimLinkServer } from "../gateway/simlink";
import { Logger } from "../telemetry/log";
import { serveMetrics, type MetricsServer } from "../telemetry/metrics-http";
import { RADIO_OPTIONS, radioSettings, startRadios } from "./gateway-radios";
import { bytes, ensureKeyFile, ensureSecretFile } from "./keyfile";
import { CommandSpec, hostPorts, intIn, oneOf, port, str, tokensOption, UsageError, Values } from "./options";

export const GATEWAY: CommandSpec = {
  name: "gateway",
  summary: "Runs a gateway: device links in, the controller's backbone out. Prints its kid and public key for the controller's --gateway.",
  options: {
    mode: { type: "string", help: "terminate (ends device sessions) or relay (carries them sealed; holds no device keys)", default: "terminate" },
    controller: { type: "string", help: "the controller's backbone host:port; several, comma-separated, for a cluster (one connection at a time, the next one when it fails)", default: "127.0.0.1:7300" },
    "controller-key": { type: "string", help: "the controller's backbone public key (hex, 64 digits)" },
    "key-file": { type: "string", help: "this gateway's identity (made if missing)", default: ".sesame/gateway.key" },
    "sim-port": { type: "string", help: "port the board simulator connects to (0 = any, off = none)", default: "7400" },
    "sim-host": { type: "string", help: "address the simulator link listens on (0.0.0.0 in a container)", default: "127.0.0.1" },
    "sim-secret-file": { type: "string", help: "the simulator link's shared secret, 64 hex digits (made 0600 if missing; default: sim.secret beside --key-file)" },
    ...RADIO_OPTIONS,
    "metrics-port": { type: "string", help: "port of this gateway's Prometheus /metrics and /status, on 127.0.0.1 (0 = any, off = none)", default: "off" },
    "metrics-tokens": { type: "string", help: "id:sha256-of-token,... that may read /metrics and /status (sesame token makes one)" },
    "device-threads": { type: "string", help: "terminate mode: worker threads the device sessions are shared out over, by SPI (1 = all on the main thread)", default: "1" },
  },
};

export async function runGateway(v: Values, log: Logger): Promise<{ gateway: Gateway; sim: SimLinkServer | undefined; metrics: MetricsServer | undefined }> {
  const mode = oneOf(v, "mode", ["terminate", "relay"] as const);
  const [ctl, ...fallbacks] = hostPorts(v, "controller");
  const ck = str(v, "controller-key");
  if (!/^[0-9a-f]{64}$/.test(ck)) throw new UsageError(`--controller-key: must be the controller's public key, 64 hex digits (sesame controller prints it as "public")`);
  const radios = radioSettings(v);
  const metricsPort = v["metrics-port"] === "off" ? undefined : port(v, "metrics-port");
  const metricsTokens = tokensOption(v, "metrics-tokens");
  if (metricsPort !== undefined && metricsTokens.length === 0) log.warn("no metrics tokens: every /metrics and /status request will be refused (401); sesame token makes one");
  const deviceThreads = intIn(v, "device-threads", 1, 64, "worker threads for device sessions");
  const key = ensureKeyFile(str(v, "key-file"), log);
  if (key.made) log.info("made this gateway's identity", { file: path.resolve(str(v, "key-file")) });
  const gateway = new Gateway({
    mode, identity: { kid: bytes(key.key.kid), keys: { S: bytes(key.key.public), s: bytes(key.key.secret) } },
    controller: { host: ctl.host, port: ctl.port, publicKey: bytes(ck), fallbacks }, log, deviceThreads,
  });
  const metrics = metricsPort === undefined ? undefined
    : await serveMetrics({ metrics: gateway.metrics, tokens: [metricsTokens], port: metricsPort, status: () => ({ ...gateway.stats }) });
  let sim: SimLinkServer | undefined;
  let simPort = -1;
  if (v["sim-port"] !== "off") {
    const secretFile = typeof v["sim-secret-file"] === "string" ? v["sim-secret-file"] : path.join(path.dirname(str(v, "key-file")), "sim.secret");
    const secret = ensureSecretFile(secretFile);
    if (secret.made) log.info("made the simulator link's secret; give it to the simulator", { file: path.resolve(secretFile) });
    sim = new SimLinkServer({ packet: (l, b, signal) => gateway.input(l, b, signal), connected: (l) => gateway.connected(l), disconnected: () => {} }, secret.secret);
    simPort = await sim.listen(port(v, "sim-port"), str(v, "sim-host"));
    const s = sim;
    gateway.metrics.watchListener("sim", () => ({ ...s.dropped }));
  }
  startRadios(radios, gateway, sim, log);
  gateway.start();
  process.stdout.write(JSON.stringify({ ready: "gateway", mode, kid: key.key.kid, public: key.key.public, simPort, metricsPort: metrics?.port ?? "off" }) + "\n");
  return { gateway, sim, metrics };
}
