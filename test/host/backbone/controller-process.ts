// A controller in its own process, for the kill -9 test: a BackboneServer on the port it is given, which
// passes every uplink to its parent over IPC and acknowledges a message to the gateway only once the
// parent's pipe has it (that is this controller's "durably taken").
import { BackboneServer } from "../../../host/backbone/link";
import { Uplink } from "../../../host/backbone/frame";

type Init = { port: number; s: string; S: string; kid: string; gw: string };

process.once("message", async (init: Init) => {
  const kid = Buffer.from(init.kid, "hex");
  const server = new BackboneServer({
    keys: { s: Buffer.from(init.s, "hex"), S: Buffer.from(init.S, "hex") },
    gateways: (k) => (Buffer.from(k).equals(kid) ? Buffer.from(init.gw, "hex") : undefined),
    autoAck: false,
  });
  server.on("message", (m: Uplink, gateway: string, seq: number) => {
    const run = server.peers.get(gateway)!.peerRunHex;
    process.send!({ text: Buffer.from(m.payload).toString(), run, seq }, undefined, {}, () => server.ack(gateway, seq + 1, run));
  });
  await server.listen(init.port);
  process.send!({ listening: true });
});
process.on("disconnect", () => process.exit(0));
