import assert from "node:assert/strict";
import fc from "fast-check";
import { AppMessage, checkedBodySize, encodeBatch, KIND_UPLINK, Uplink } from "../../../host/backbone/frame";
import { OutQueue, PER_MESSAGE_OVERHEAD, SPLICE_MIN } from "../../../host/backbone/queue";

const msg = (i: number, size: number): Uplink => ({ kind: KIND_UPLINK, device: Uint8Array.of(i & 0xff), payload: new Uint8Array(size).fill(i & 0xff) });

describe("OutQueue", () => {
  it("sends what was queued, in order, after any mix of pushes, reservations, batches, acknowledgements and reconnects", () => {
    const op = fc.oneof(
      fc.record({ push: fc.nat({ max: 40 }), big: fc.boolean() }),
      fc.record({ reserve: fc.nat({ max: 40 }) }),
      fc.record({ take: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ ack: fc.nat({ max: 60 }) }),
      fc.constant({ rewind: true }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const q = new OutQueue({ maxBytes: 1 << 30, maxMessages: 1 << 20 });
      const queued: AppMessage[] = []; // message n is queued[n]
      let acked = 0;
      let n = 0;
      for (const o of ops) {
        if ("push" in o) {
          const m = msg(n++, o.big ? SPLICE_MIN + o.push : o.push);
          assert.ok(q.push(m, checkedBodySize(m)));
          queued.push(m);
        } else if ("reserve" in o) {
          const m = msg(n++, o.reserve);
          const at = q.reserve(KIND_UPLINK, m.device, o.reserve);
          q.buffer.set(m.payload, at);
          queued.push(m);
        } else if ("take" in o) {
          const from = q.nextToSend;
          const chunks: Uint8Array[] = [];
          const { taken } = q.takeBatch(chunks, o.take, 1000);
          assert.equal(taken, q.nextToSend - from);
          assert.deepEqual(Buffer.concat(chunks), encodeBatch(queued.slice(from, from + taken)));
        } else if ("ack" in o) {
          acked = Math.min(q.sentHigh, acked + o.ack);
          q.ack(acked);
          assert.equal(q.base, acked);
        } else q.rewind();
        const left = queued.slice(q.base);
        assert.equal(q.count, left.length);
        assert.equal(q.bytes, encodeBatch(left).length + left.length * PER_MESSAGE_OVERHEAD);
        assert.equal(q.unsentBytes, encodeBatch(queued.slice(q.nextToSend)).length);
      }
    }), { numRuns: 300 });
  });

  it("refuses past its limits, and takes any one message when empty", () => {
    const q = new OutQueue({ maxBytes: 1000, maxMessages: 3 });
    const big = msg(1, 5000);
    assert.ok(q.push(big, checkedBodySize(big)), "an empty queue takes a message larger than maxBytes");
    assert.equal(q.push(msg(2, 1), checkedBodySize(msg(2, 1))), false);
    assert.equal(q.refused, true);
    const chunks: Uint8Array[] = [];
    q.takeBatch(chunks, 1 << 20, 10);
    q.ack(1);
    for (let i = 0; i < 3; i++) assert.ok(q.reserve(KIND_UPLINK, Uint8Array.of(i), 10) >= 0);
    assert.equal(q.reserve(KIND_UPLINK, Uint8Array.of(9), 10), -1, "maxMessages");
  });
});
