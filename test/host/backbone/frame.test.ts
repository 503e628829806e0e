import assert from "node:assert/strict";
import fc from "fast-check";
import { decodePieces } from "../../../host/backbone/batch";
import { OutQueue, SPLICE_MIN } from "../../../host/backbone/queue";
import {
  AppMessage, checkedBodySize, checkMessage, decodeBatch, encodeBatch, FrameError, FRAME_EVENT, FRAME_KIND, FRAME_LENGTH, FRAME_TRAILING, FRAME_TRUNCATED, FRAME_VARINT,
  KIND_ACK, KIND_DOWNLINK, KIND_GATEWAY_STATUS, KIND_HELLO, KIND_RELAY_DOWN, KIND_RELAY_UP, KIND_SESSION_EVENT, KIND_UPLINK, MAX_ID, MAX_UVARINT, Message,
  messageSize, SESSION_CLOSED, SESSION_OPENED,
} from "../../../host/backbone/frame";

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const id = fc.uint8Array({ maxLength: 16 });
const count = fc.oneof(fc.nat({ max: 300 }), fc.constantFrom(0, 127, 128, 16383, 16384, 2 ** 32, MAX_UVARINT), fc.maxSafeNat());

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ kind: fc.constant(KIND_UPLINK), device: id, payload: bytes(300) }),
  fc.record({ kind: fc.constant(KIND_DOWNLINK), device: id, payload: bytes(300) }),
  fc.record({ kind: fc.constant(KIND_RELAY_UP), source: id, spdu: bytes(300) }),
  fc.record({ kind: fc.constant(KIND_RELAY_DOWN), source: id, spdu: bytes(300) }),
  fc.record({ kind: fc.constant(KIND_SESSION_EVENT), device: id, event: fc.constantFrom(SESSION_OPENED, SESSION_CLOSED), detail: bytes(40) }),
  fc.record({ kind: fc.constant(KIND_ACK), taken: count }),
  fc.record({ kind: fc.constant(KIND_GATEWAY_STATUS), status: bytes(200) }),
  fc.record({ kind: fc.constant(KIND_HELLO), run: fc.uint8Array({ minLength: 8, maxLength: 8 }), next: count, peerRun: fc.uint8Array({ minLength: 8, maxLength: 8 }), taken: count }),
) as fc.Arbitrary<Message>;

/** Messages as plain data, so decoded views and encoded arrays compare equal. */
const plain = (ms: Message[]) => ms.map((m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v])));

/** Cuts b at the given points into pieces (Buffers), as a record's plaintext comes out of the cipher. */
function cut(b: Uint8Array, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, b.length]) {
    if (p > prev) out.push(Buffer.from(b.subarray(prev, p)));
    prev = p;
  }
  return out;
}

describe("backbone frame codec", () => {
  it("round-trips any batch, whole and cut into any pieces", () => {
    fc.assert(fc.property(fc.array(messageArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 6 }), (ms, points) => {
      const b = encodeBatch(ms);
      assert.equal(b.length, ms.reduce((n, m) => n + messageSize(m), 0));
      const back = decodeBatch(b);
      assert.ok(!(back instanceof FrameError), String(back));
      assert.deepEqual(plain(back), plain(ms));
      const pieces = decodePieces(cut(b, points));
      assert.ok(!(pieces instanceof FrameError), String(pieces));
      assert.deepEqual(plain(pieces), plain(ms));
    }), { numRuns: 500 });
  });

  it("queues the same bytes as chunks (long payloads spliced in, not copied), batch after batch", () => {
    const big = new Uint8Array(SPLICE_MIN + 5).fill(7);
    const ms: AppMessage[] = [
      { kind: KIND_UPLINK, device: Uint8Array.of(1), payload: Uint8Array.of(9, 9) },
      { kind: KIND_UPLINK, device: Uint8Array.of(2), payload: big },
      { kind: KIND_SESSION_EVENT, device: Uint8Array.of(3), event: SESSION_CLOSED, detail: Uint8Array.of(4) },
    ];
    const q = new OutQueue();
    for (let round = 0; round < 3; round++) {
      for (const m of ms) assert.ok(q.push(m, checkedBodySize(m)));
      const chunks: Uint8Array[] = [];
      assert.deepEqual(q.takeBatch(chunks, 1 << 20, 100), { taken: 3, resent: 0 });
      assert.equal(chunks.length, 3);
      assert.equal(chunks[1], big, "the long payload is the caller's own buffer");
      assert.deepEqual(Buffer.concat(chunks), encodeBatch(ms));
      q.ack(q.end);
    }
    // What reserve() queues is what push() queues for the same message.
    const at = q.reserve(KIND_UPLINK, Uint8Array.of(1), 2);
    q.buffer[at] = 9;
    q.buffer[at + 1] = 9;
    const chunks: Uint8Array[] = [];
    q.takeBatch(chunks, 1 << 20, 100);
    assert.deepEqual(Buffer.concat(chunks), encodeBatch([ms[0]]));
  });

  it("has the documented layout", () => {
    const b = encodeBatch([
      { kind: KIND_UPLINK, device: Buffer.from("d1"), payload: Buffer.from("hi") },
      { kind: KIND_ACK, taken: 300 },
      { kind: KIND_SESSION_EVENT, device: Buffer.from("d1"), event: SESSION_CLOSED, detail: new Uint8Array(0) },
      { kind: KIND_GATEWAY_STATUS, status: Uint8Array.of(1, 2, 3) },
    ]);
    // 01 len=5 dlen=2 "d1" "hi" | 06 len=2 300=ac02 | 05 len=4 dlen=2 "d1" 02 | 10 len=3 status (no id)
    assert.equal(b.toString("hex"), "0105" + "02" + "6431" + "6869" + "0602ac02" + "0504" + "02" + "6431" + "02" + "1003010203");
  });

  it("refuses messages it cannot encode", () => {
    assert.match(checkMessage({ kind: KIND_UPLINK, device: new Uint8Array(MAX_ID + 1), payload: new Uint8Array(0) })!, /ids are at most/);
    assert.match(checkMessage({ kind: KIND_ACK, taken: -1 })!, /ACK/);
    assert.match(checkMessage({ kind: KIND_ACK, taken: 2 ** 53 })!, /ACK/);
    assert.match(checkMessage({ kind: KIND_SESSION_EVENT, device: new Uint8Array(1), event: 9, detail: new Uint8Array(0) })!, /event/);
    assert.throws(() => encodeBatch([{ kind: KIND_HELLO, run: new Uint8Array(7), next: 0, peerRun: new Uint8Array(8), taken: 0 }]), RangeError);
  });

  it("rejects each kind of malformed batch with its typed error", () => {
    const cases: [string, number, number][] = [
      ["01", FRAME_TRUNCATED, 0], // no length: the message is cut short where it starts
      ["010502", FRAME_TRUNCATED, 0], // body runs past the end
      ["7f", FRAME_KIND, 0],
      ["00", FRAME_KIND, 0],
      ["0f00", FRAME_KIND, 0],
      ["1100", FRAME_KIND, 0],
      ["018000", FRAME_VARINT, 1], // 0 in two bytes: not the shortest form
      ["01ffffffffffffffff01", FRAME_VARINT, 1], // more than 8 bytes
      ["01808080808080801000", FRAME_VARINT, 1], // 2^53: one past the largest
      ["010205" + "00", FRAME_LENGTH, 3], // id of 5 bytes in a 2-byte body
      ["0603000000", FRAME_TRAILING, 3], // ACK with bytes after its count
      ["050200" + "07", FRAME_EVENT, 3],
      ["0501" + "00", FRAME_TRUNCATED, 3], // SESSION_EVENT without its event byte
      ["0703" + "000000", FRAME_TRUNCATED, 2], // HELLO shorter than its run id
    ];
    for (const [hex, code, offset] of cases) {
      const r = decodeBatch(Buffer.from(hex, "hex"));
      assert.ok(r instanceof FrameError, hex);
      assert.deepEqual([r.code, r.offset], [code, offset], `${hex}: ${r}`);
    }
    const longest = decodeBatch(Buffer.from("0601" + "00", "hex"));
    assert.ok(!(longest instanceof FrameError));
  });

  it("never throws on garbage, whole or in pieces, and decodes it the same either way", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 5 }), (junk, points) => {
      const whole = decodeBatch(junk);
      const pieces = decodePieces(cut(junk, points));
      assert.equal(whole instanceof FrameError, pieces instanceof FrameError);
      if (!(whole instanceof FrameError)) assert.deepEqual(plain(pieces as Message[]), plain(whole));
    }), { numRuns: 3000 });
    // Mutations of valid batches: flipped bytes, cut short, bytes appended.
    fc.assert(fc.property(fc.array(messageArb, { minLength: 1, maxLength: 8 }), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 3 }), (ms, at, x, op) => {
      const b = encodeBatch(ms);
      const i = at % b.length;
      const bad = op === 0 ? Buffer.from(b).fill(b[i] ^ x, i, i + 1) : op === 1 ? b.subarray(0, i) : op === 2 ? Buffer.concat([b, Buffer.of(x)]) : Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
      const r = decodeBatch(bad);
      if (r instanceof FrameError) assert.ok(r.code >= 1 && r.code <= 6 && r.offset >= 0 && r.offset <= bad.length, String(r));
    }), { numRuns: 3000 });
  });
});
