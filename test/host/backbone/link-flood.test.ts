// The backbone listener under a flood of silent connections (issue 10: about 86 a second held all 64
// handshake slots, and a restarted gateway stayed off the backbone for the whole flood). A real
// BackboneServer, a gateway that was connected and restarts while the flood runs, and floods from another
// address, from many, and from the gateway's own address: the gateway must get back to OPEN.
import assert from "node:assert/strict";
import { backboneKeyPair } from "../../../host/backbone/handshake";
import { BackboneClient, BackboneServer, CLIENT_OPEN } from "../../../host/backbone/link";
import { silentFlood, type SilentFlood } from "../../../scripts/lib/flood";
import { until } from "../../harness/until";

const ctl = backboneKeyPair();
const gw = backboneKeyPair();
const kid = Buffer.from("0a0b0c0d", "hex");
const pinned = (k: Uint8Array) => (Buffer.from(k).equals(kid) ? gw.S : undefined);

const gateway = (port: number) =>
  new BackboneClient({ host: "127.0.0.1", port, identity: { kid, keys: gw }, controllerKey: ctl.S }).start();

const FLOODS: { name: string; from: string[]; perSecond: number }[] = [
  { name: "from another address (127.0.0.2)", from: ["127.0.0.2"], perSecond: 500 },
  { name: "from 32 other addresses", from: Array.from({ length: 32 }, (_, i) => `127.0.1.${i + 1}`), perSecond: 500 },
  { name: "from the gateway's own address, at over four times the rate measured in the issue", from: ["127.0.0.1"], perSecond: 400 },
];

describe("backbone listener under a flood of silent connections", function () {
  this.timeout(120_000);
  let server: BackboneServer | undefined, flood: SilentFlood | undefined;
  const clients: BackboneClient[] = [];
  afterEach(async () => {
    flood?.stop();
    for (const c of clients.splice(0)) await c.close();
    await server?.close();
  });

  for (const f of FLOODS) {
    it(`a restarted gateway gets back to OPEN during a flood ${f.name}`, async () => {
      server = new BackboneServer({ keys: ctl, gateways: pinned });
      const { port } = await server.listen(0);
      const before = gateway(port);
      clients.push(before);
      await until(() => before.state === CLIENT_OPEN, "the gateway's first connection");
      flood = silentFlood({ port, from: f.from, perSecond: f.perSecond, maxMs: 60_000 });
      await until(() => flood!.opened >= f.perSecond, "a second of flood");
      await before.close(); // the gateway restarts: a fresh client with the same identity
      const after = gateway(port);
      clients.push(after);
      await until(() => after.state === CLIENT_OPEN, "the restarted gateway OPEN", 30_000);
      assert.ok(flood.opened >= f.perSecond && flood.closedByServer > 0, "the flood ran, and the server closed some of it");
      assert.ok(server.stats.evicted > 0, `the listener evicted silent connections: ${JSON.stringify(server.stats)}`);
      assert.ok(server.handshaking <= 64, "half-open connections stay within the bound");
    });
  }
});
