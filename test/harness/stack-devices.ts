// psk devices driven in the test's own process against a stack's gateway (test/harness/stack.ts): provisioned
// through the registry, handshaking through the gateway's device input, their packets taken from its output.
import { epInput, epPoll, epStart, epTakeOutput, type Endpoint } from "../../firmware/session/endpoint";
import { memoryStorage } from "../../firmware/runtime/facade";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import type { DownPacket } from "../../host/gateway/devices";
import type { Gateway } from "../../host/gateway/gateway";
import { hostProvider } from "../../host/crypto/provider";
import { pskDevice } from "./psk-device";
import type { startStack } from "./stack";
import { until } from "./until";

/** Drives a device endpoint over a gateway's packets until its session is confirmed on both sides. */
export async function handshake(dev: Endpoint, link: string, send: (b: Uint8Array) => void, take: () => DownPacket[]): Promise<void> {
  const before = dev.session;
  epStart(dev, Date.now());
  await until(() => {
    epPoll(dev, Date.now()); // retries while the gateway has no keys for the device yet
    for (const o of epTakeOutput(dev)) send(o.bytes);
    for (const o of take()) if (o.link === link) epInput(dev, o.bytes, 1, Date.now());
    return dev.session !== undefined && dev.session !== before && dev.session.confirmed;
  }, "a confirmed session");
  for (const o of epTakeOutput(dev)) send(o.bytes); // its CONFIRM: the gateway's side is confirmed by it
}

/** The gateway's packets for its device links, taken from whichever link adapter was listening. */
export function outputOf(gateway: Gateway): () => DownPacket[] {
  const out: DownPacket[] = [];
  gateway.removeAllListeners("output");
  gateway.on("output", () => out.push(...gateway.takeOutput()));
  return () => out.splice(0);
}

const policy = () => ({ suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store: memoryStorage(), codec: undefined, compress: false });

/** A psk board provisioned in the stack's registry, and its endpoint (retrying every 300 ms). */
export async function provisioned(s: Awaited<ReturnType<typeof startStack>>) {
  const p = await s.controller.store.registry.provision({ board: "puckjs", mode: "psk" });
  const f = Object.fromEntries(p.config.split(";").map((kv) => kv.split("=")));
  return { device: p.device, psk: f.psk, dev: pskDevice(Buffer.from(f.id, "hex"), Buffer.from(f.psk, "hex"), policy(), 300) };
}
