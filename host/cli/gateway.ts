// `sesame gateway`: device links (the simulator's link, and a BLE central or a LoRa serial modem when the
// machine has them) to the controller's backbone, in terminate or relay mode.
import * as path from "node:path";
import { Gateway } from "../gateway/gateway";
import { SimLinkServer } from "../gateway/simlink";
import { Logger } from "../telemetry/log";
import { bytes, ensureKeyFile } from "./keyfile";
import { CommandSpec, hostPort, oneOf, port, str, UsageError, Values } from "./options";

export const GATEWAY: CommandSpec = {
  name: "gateway",
  summary: "Runs a gateway: device links in, the controller's backbone out. Prints its kid and public key for the controller's --gateway.",
  options: {
    mode: { type: "string", help: "terminate (ends device sessions) or relay (carries them sealed; holds no device keys)", default: "terminate" },
    controller: { type: "string", help: "the controller's backbone host:port", default: "127.0.0.1:7300" },
    "controller-key": { type: "string", help: "the controller's backbone public key (hex, 64 digits)" },
    "key-file": { type: "string", help: "this gateway's identity (made if missing)", default: ".sesame/gateway.key" },
    "sim-port": { type: "string", help: "port the board simulator connects to (0 = any, off = none)", default: "7400" },
    ble: { type: "boolean", help: "use the machine's BLE radio as a central (needs @abandonware/noble)" },
    "lora-port": { type: "string", help: "serial port of a LoRa AT-command modem (needs serialport)" },
  },
};

/** Hardware links: said once, then the gateway carries on with what it has. */
async function probeHardware(v: Values, log: Logger): Promise<void> {
  if (v.ble) {
    try {
      await import("@abandonware/noble" as string);
      log.warn("BLE: noble loaded, but this build has no BLE central link yet; carrying on without BLE");
    } catch {
      log.warn("BLE: no radio here (@abandonware/noble is not installed); carrying on without BLE");
    }
  } else log.info("BLE: not asked for (--ble); carrying on without it");
  if (v["lora-port"]) {
    try {
      await import("serialport" as string);
      log.warn("LoRa: serialport loaded, but this build has no AT-modem link yet; carrying on without LoRa", { port: v["lora-port"] });
    } catch {
      log.warn("LoRa: no modem support here (serialport is not installed); carrying on without LoRa", { port: v["lora-port"] });
    }
  } else log.info("LoRa: no modem given (--lora-port); carrying on without it");
}

export async function runGateway(v: Values, log: Logger): Promise<{ gateway: Gateway; sim: SimLinkServer | undefined }> {
  const mode = oneOf(v, "mode", ["terminate", "relay"] as const);
  const ctl = hostPort(v, "controller");
  const ck = str(v, "controller-key");
  if (!/^[0-9a-f]{64}$/.test(ck)) throw new UsageError(`--controller-key: must be the controller's public key, 64 hex digits (sesame controller prints it as "public")`);
  const key = ensureKeyFile(str(v, "key-file"));
  if (key.made) log.info("made this gateway's identity", { file: path.resolve(str(v, "key-file")) });
  const gateway = new Gateway({
    mode, identity: { kid: bytes(key.key.kid), keys: { S: bytes(key.key.public), s: bytes(key.key.secret) } },
    controller: { host: ctl.host, port: ctl.port, publicKey: bytes(ck) }, log,
  });
  await probeHardware(v, log);
  let sim: SimLinkServer | undefined;
  let simPort = -1;
  if (v["sim-port"] !== "off") {
    sim = new SimLinkServer({ packet: (l, b) => gateway.input(l, b), connected: (l) => gateway.connected(l), disconnected: () => {} });
    simPort = await sim.listen(port(v, "sim-port"));
    gateway.on("output", () => {
      for (const o of gateway.takeOutput()) sim!.send(o);
    });
  }
  gateway.start();
  process.stdout.write(JSON.stringify({ ready: "gateway", mode, kid: key.key.kid, public: key.key.public, simPort }) + "\n");
  return { gateway, sim };
}
