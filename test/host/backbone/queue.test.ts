import assert from "node:assert/strict";
import fc from "fast-check";
import { AppMessage, checkedBodySize, encodeBatch, KIND_UPLINK, Uplink } from "../../../host/backbone/frame";
import { BLOCK, OutQueue, PER_MESSAGE_OVERHEAD, SPLICE_MIN } from "../../../host/backbone/queue";

const msg = (i: number, size: number): Uplink => ({ kind: KIND_UPLINK, device: Uint8Array.of(i & 0xff), payload: new Uint8Array(size).fill(i & 0xff) });

describe("OutQueue", () => {
  // Blocks of 64 bytes: messages cross into new blocks, and reservations outgrow them, all the time.
  for (const block of [BLOCK, 64]) it(`sends what was queued, in order, after any mix of pushes, reservations, batches, acknowledgements and reconnects (${block}-byte blocks)`, () => {
    const op = fc.oneof(
      fc.record({ push: fc.nat({ max: 40 }), big: fc.boolean() }),
      fc.record({ reserve: fc.nat({ max: 200 }) }),
      fc.record({ take: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ ack: fc.nat({ max: 60 }) }),
      fc.constant({ rewind: true }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const q = new OutQueue({ maxBytes: 1 << 30, maxMessages: 1 << 20 }, block);
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

  it("never moves queued bytes: a batch's views stay as they were until its messages are acknowledged", () => {
    const q = new OutQueue({ maxBytes: 1 << 20, maxMessages: 1 << 20 });
    const sent: { views: Uint8Array[]; copy: Buffer; upTo: number }[] = [];
    let i = 0;
    for (let round = 0; round < 10; round++) {
      while (q.push(msg(i, 1000), checkedBodySize(msg(i, 1000)))) i++;
      for (const b of sent) if (b.upTo > q.base) assert.deepEqual(Buffer.concat(b.views), b.copy, `round ${round}`);
      while (q.hasUnsent) {
        const views: Uint8Array[] = [];
        q.takeBatch(views, 64 << 10, 1 << 14);
        sent.push({ views, copy: Buffer.concat(views), upTo: q.nextToSend });
      }
      q.ack(q.base + Math.ceil(q.count * 0.6)); // the peer lags: 40% stays unacknowledged while more is queued
    }
  });

  it("holds no more memory than its byte limit and a few blocks, however often it fills and drains", () => {
    const limits = { maxBytes: 4 << 20, maxMessages: 1 << 20 };
    const q = new OutQueue(limits);
    const chunks: Uint8Array[] = [];
    const payload = new Uint8Array(1000);
    for (let round = 0; round < 20; round++) {
      // Fill to the limit, send it all, then take back all but the last tenth (a peer that lags).
      while (q.push(msg(round, payload.length), checkedBodySize(msg(round, payload.length)))) ;
      while (q.hasUnsent) q.takeBatch(chunks, 256 << 10, 1 << 14);
      chunks.length = 0;
      q.ack(q.end - Math.floor(q.count / 10));
      assert.ok(q.blockBytes <= limits.maxBytes + 3 * BLOCK, `round ${round}: ${q.blockBytes} bytes of blocks`);
    }
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
