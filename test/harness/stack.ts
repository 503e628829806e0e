// A whole stack in one process for end-to-end tests: controller (embedded Postgres, embedded MQTT unless told
// otherwise), a gateway in the given mode connected to it over the backbone, and the gateway's simulator
// link, all on ephemeral ports.
import { randomBytes } from "node:crypto";
import { backboneKeyPair } from "../../host/backbone/handshake";
import { Controller, type ControllerOptions } from "../../host/controller/controller";
import { MasterKey } from "../../host/controller/masterkey";
import { generateToken } from "../../host/controller/tokens";
import { Gateway, type GatewayMode } from "../../host/gateway/gateway";
import { SimLinkServer } from "../../host/gateway/simlink";
import { Logger, memorySink } from "../../host/telemetry/log";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export async function startStack(
  mode: GatewayMode, mqttBroker: { kind: "embedded"; port: number } | { kind: "external"; url: string } = { kind: "embedded", port: 0 }, more: Partial<ControllerOptions> = {},
  /** The gateways' device side over worker threads (`--device-threads`), 1 for this thread. */
  deviceThreads = 1,
) {
  const sink = memorySink();
  const log = Logger.create({ level: "info", stream: sink });
  const ctlKeys = backboneKeyPair(), gwKeys = backboneKeyPair(), gwKid = randomBytes(4);
  const admin = generateToken(), scrape = generateToken();
  const controller = new Controller({
    store: { db: {}, masterKeys: [MasterKey.generate()] }, keys: ctlKeys, gateways: [{ kid: hex(gwKid), publicKey: gwKeys.S, mode }],
    backbone: { port: 0 }, admin: { port: 0, tokens: [{ id: "test", sha256: admin.sha256 }], metricsTokens: [{ id: "scrape", sha256: scrape.sha256 }] }, mqtt: mqttBroker, log: log.child("controller", {}), refreshMs: 200, ...more,
  });
  const ports = await controller.start();
  // What an application logs in to the embedded broker with (read and command, every device).
  const app = await controller.store.mqtt.create({ devices: "all", access: "both" });
  const gateway = new Gateway({ mode, identity: { kid: gwKid, keys: gwKeys }, controller: { host: "127.0.0.1", port: ports.backbone, publicKey: ctlKeys.S }, log: log.child("gateway", {}), deviceThreads });
  gateway.start();
  const simSecret = randomBytes(32);
  const sim = new SimLinkServer({ packet: (l, b, signal) => gateway.input(l, b, signal), connected: (l) => gateway.connected(l), disconnected: () => {} }, simSecret);
  const simPort = await sim.listen(0);
  gateway.on("output", () => {
    for (const o of gateway.takeOutput()) sim.send(o);
  });
  return {
    controller, gateway, sim, simPort, simSecret, ports, sink,
    /** A bearer token for the admin API. */
    adminToken: admin.token,
    /** An application's MQTT login on the embedded broker. */
    mqttLogin: { username: app.credential.username, password: app.password },
    /** A bearer token for /metrics and /status only. */
    metricsToken: scrape.token,
    /** What another gateway process with this gateway's identity needs (a key file's fields, the controller's key). */
    gatewayKey: { kid: hex(gwKid), public: hex(gwKeys.S), secret: hex(gwKeys.s) },
    controllerKey: hex(ctlKeys.S),
    /** Another gateway process with this one's identity (a restart), or with `identity`, not started. */
    gatewayLike: (identity = { kid: gwKid, keys: gwKeys }) => new Gateway({ mode, identity, controller: { host: "127.0.0.1", port: ports.backbone, publicKey: ctlKeys.S }, log: log.child("gateway", {}), deviceThreads }),
    close: async () => {
      await sim.close();
      await gateway.close();
      await controller.stop();
    },
  };
}

