import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { FLAG_CONTROL } from "../../../firmware/record/header";
import { CTRL_KEY_UPDATE } from "../../../firmware/session/session";
import { BackboneConnection, CONN_OPEN } from "../../../host/backbone/connection";
import { backboneKeyPair, controllerEndpointConfig, gatewayEndpointConfig } from "../../../host/backbone/handshake";
import { sealChunks } from "../../../host/backbone/records";
import { tcpPair } from "../../harness/tcp-pair";
import { until } from "../../harness/until";

/** A gateway and a controller connection over loopback TCP, both ready. */
async function pair() {
  const ctl = backboneKeyPair(), gw = backboneKeyPair();
  const kid = Buffer.from("0a0b0c0d", "hex");
  const [socket, theirs] = await tcpPair();
  const controller = new BackboneConnection(theirs, controllerEndpointConfig(ctl, (k) => (Buffer.from(k).equals(kid) ? gw.S : undefined)));
  const gateway = new BackboneConnection(socket, gatewayEndpointConfig({ kid, keys: gw }, ctl.S));
  await until(() => controller.state === CONN_OPEN && gateway.state === CONN_OPEN, "both ready");
  return { controller, gateway, close: () => { gateway.close(); controller.close(); socket.destroy(); theirs.destroy(); } };
}

describe("backbone connection: KEY_UPDATE", () => {
  it("moves its sending key once for any number of copies of a request, and the peer still opens what it sends", async () => {
    const { controller, gateway, close } = await pair();
    try {
      const c = controller.session!;
      // The controller asks the gateway, three times, to move to key index 1 (its receiving key 0 + 1).
      for (let n = 0; n < 3; n++) {
        for (const part of sealChunks(c, [Uint8Array.of(CTRL_KEY_UPDATE, 1)], FLAG_CONTROL, Date.now(), 64)!) controller.socket.write(part);
      }
      await until(() => gateway.session!.out.epoch.index >= 1, "the gateway's step");
      await sleep(50);
      assert.equal(gateway.session!.out.epoch.index, 1, "one step for three requests");
      assert.ok(gateway.sendBatch([]), "an empty batch (a keepalive) under key 1");
      await until(() => c.inb.cur.epoch.index === 1, "the controller on key 1");
      assert.equal(controller.state, CONN_OPEN, "no record failed to open");
    } finally {
      close();
    }
  });
});
