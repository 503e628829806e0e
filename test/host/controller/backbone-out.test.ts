// What the controller sends its gateways and their full backbone queues refuse: a relayed packet down to a
// device is lost as on the air (the device sends again) and counted, in
// sesame_queue_dropped_total{queue="backbone-out"}, with the queue's length beside it.
import assert from "node:assert/strict";
import { BleBoard } from "../../harness/ble-board";
import { startStack } from "../../harness/stack";
import { until } from "../../harness/until";

describe("controller: messages to a gateway its full queue refuses", function () {
  this.timeout(60_000);

  it("counts a relayed packet down that a full queue refused, and the device gets its ACK once there is room", async () => {
    const s = await startStack("relay");
    let board: BleBoard | undefined;
    try {
      const p = await s.controller.store.registry.provision({ board: "puckjs" });
      s.gateway.removeAllListeners("output");
      const b = (board = new BleBoard("full", p.config + ";rto=400;tries=50;retry=1000"));
      b.attach({ attached: true, input: (l: string, x: Uint8Array) => s.gateway.input(l, x), connected: (l: string) => s.gateway.connected(l), disconnected: () => {}, takeOutput: () => [] });
      const hear = () => {
        for (const o of s.gateway.takeOutput()) if (o.link === b.link) b.hear(o.bytes);
      };
      const first = b.send(Buffer.from("first"));
      await until(() => (hear(), b.acknowledged().includes(first)), "the first reading acknowledged");
      const dropped = async () => Number(/^sesame_queue_dropped_total\{queue="backbone-out"\} (\d+)$/m.exec(await s.controller.metrics.text())?.[1] ?? NaN);
      assert.equal(await dropped(), 0, "the counter is there from the start, at 0");

      // The gateway's queue is full: the controller's ACK for the next reading cannot go down.
      const server = s.controller.server;
      const send = server.send.bind(server);
      server.send = () => false;
      const second = b.send(Buffer.from("second"));
      await until(async () => (hear(), (await dropped()) >= 1), "a refused ACK counted");
      assert.ok(!b.acknowledged().includes(second));
      server.send = send; // room again: the device's next copy is answered
      await until(() => (hear(), b.acknowledged().includes(second)), "the second reading acknowledged after all");
    } finally {
      board?.stop();
      await s.close();
    }
  });
});
