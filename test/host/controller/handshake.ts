// A device and a gateway endpoint (firmware/runtime/facade.ts on the host provider) run a handshake and
// one record: proof that a provisioned configuration is one the firmware accepts and that the keys the
// registry holds for it are the right ones.
import assert from "node:assert/strict";
import * as facade from "../../../firmware/runtime/facade";
import { hostProvider } from "../../../host/crypto/provider";
import { hostCodec } from "../../../host/record/gpcomp";

let ready = false;

/** Moves packets between two endpoints until both are quiet (a sliced X25519 takes many polls). */
function pump(d: number, g: number, now: number, rounds = 20_000): void {
  for (let i = 0; i < rounds; i++) {
    facade.epPollH(d, now);
    facade.epPollH(g, now);
    const a = facade.epOutH(d), b = facade.epOutH(g);
    if (!a && !b && facade.epReadyH(d) && facade.epReadyH(g)) return;
    for (const p of a ? a.split(",") : []) { const [t, x] = p.split(":"); facade.epFeedH(g, x, +t, now); }
    for (const p of b ? b.split(",") : []) { const [t, x] = p.split(":"); facade.epFeedH(d, x, +t, now); }
  }
}

const text = (s: string) => Buffer.from(s).toString("hex");

/** The device runs `deviceConf` exactly as provisioned; the gateway is keyed from the registry. */
export function assertHandshake(deviceConf: string, gatewayConf: string): void {
  if (!ready) facade.facadeInit(hostProvider, facade.memoryStorage(), hostCodec);
  ready = true;
  const g = facade.epCreate("gateway", gatewayConf);
  const d = facade.epCreate("device", deviceConf);
  facade.epStartH(g, 0);
  facade.epStartH(d, 0);
  pump(d, g, 0);
  assert.ok(facade.epReadyH(d) && facade.epReadyH(g), `not established: device ${facade.epInfoH(d)} gateway ${facade.epInfoH(g)}`);
  assert.ok(facade.epSendH(d, text("t=21.5"), 1));
  pump(d, g, 1);
  assert.equal(facade.epInboxH(g), text("t=21.5"));
}
