import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BLE_FIRST,
  BLE_LAST,
  BLE_MAX_PACKET,
  BLE_NOTIFY_UUID,
  BLE_SERVICE_UUID,
  BLE_WRITE_UUID,
  bleAccept,
  bleChunkCount,
  bleFragment,
  bleReassemblerNew,
} from "../../../firmware/link/ble";

const MTUS = [23, 53, 185, 247];

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return b;
}

/** Feeds chunks; returns the packets delivered, in order. */
function feed(r: ReturnType<typeof bleReassemblerNew>, chunks: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of chunks) {
    const p = bleAccept(r, c);
    if (p !== undefined) out.push(p);
  }
  return out;
}

describe("link/ble", () => {
  it("round-trips random packets 0..4111 bytes at MTU 23, 53, 185, 247 with bounded chunks", () => {
    for (const mtu of MTUS) {
      for (const n of [0, 1, mtu - 5, mtu - 4, mtu - 3, 2 * (mtu - 4), BLE_MAX_PACKET - 1, BLE_MAX_PACKET]) {
        const r = bleReassemblerNew(BLE_MAX_PACKET);
        assert.deepEqual(feed(r, bleFragment(pattern(n, mtu), mtu, n)), [pattern(n, mtu)], `mtu ${mtu} len ${n}`);
      }
    }
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: BLE_MAX_PACKET }),
        fc.constantFrom(...MTUS),
        fc.integer({ min: 0, max: 1000 }),
        (p, mtu, counter) => {
          const chunks = bleFragment(p, mtu, counter);
          const want = p.length === 0 ? 1 : Math.ceil(p.length / (mtu - 4));
          assert.equal(chunks.length, want);
          assert.equal(bleChunkCount(p.length, mtu), want);
          for (const c of chunks) assert.ok(c.length >= 1 && c.length <= mtu - 3);
          assert.equal(chunks[0][0] & BLE_FIRST, BLE_FIRST);
          assert.equal(chunks[chunks.length - 1][0] & BLE_LAST, BLE_LAST);
          const r = bleReassemblerNew(BLE_MAX_PACKET);
          assert.deepEqual(feed(r, chunks), [p]);
          assert.equal(r.dropped, 0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("delivers an empty packet as one FIRST|LAST header-only chunk", () => {
    const chunks = bleFragment(new Uint8Array(0), 23, 5);
    assert.deepEqual(chunks, [Uint8Array.of(BLE_FIRST | BLE_LAST | 5)]);
    assert.deepEqual(feed(bleReassemblerNew(BLE_MAX_PACKET), chunks), [new Uint8Array(0)]);
  });

  it("numbers chunks packet counter + index mod 64, across the wrap", () => {
    const chunks = bleFragment(pattern(100, 1), 23, 62); // 6 chunks
    assert.deepEqual(
      chunks.map((c) => c[0]),
      [0x80 | 62, 63, 0, 1, 2, 0x40 | 3],
    );
    const big = bleFragment(pattern(BLE_MAX_PACKET, 2), 23, 64 + 7); // counter masked to 7
    assert.equal(big.length, 217);
    assert.equal(big[0][0], 0x80 | 7);
    assert.deepEqual(feed(bleReassemblerNew(BLE_MAX_PACKET), big), [pattern(BLE_MAX_PACKET, 2)]);
  });

  it("gives the exact chunk counts for SSE packet sizes", () => {
    // 51-byte handshake message: 19 data bytes per chunk at MTU 23, 49 at MTU 53.
    assert.equal(bleFragment(pattern(51, 0), 23, 0).length, 3);
    assert.equal(bleFragment(pattern(51, 0), 53, 0).length, 2);
    // A 20-byte reading in a compact record, 8 + 20 + 8 = 36 bytes: 2 chunks (2 bytes overhead) at 23,
    // 1 chunk (1 byte) at 53.
    assert.equal(bleFragment(pattern(36, 0), 23, 0).length, 2);
    assert.equal(bleFragment(pattern(36, 0), 53, 0).length, 1);
    // The 16-byte error packet is one chunk anywhere; the largest record is 217 / 84 / 23 / 17 chunks.
    assert.equal(bleChunkCount(16, 23), 1);
    assert.deepEqual(
      MTUS.map((m) => bleChunkCount(BLE_MAX_PACKET, m)),
      [217, 84, 23, 17],
    );
  });

  it("drops a packet that lost any one chunk and still delivers the next one intact", () => {
    for (const mtu of [23, 53]) {
      const a = pattern(120, 3);
      const b = pattern(90, 4);
      const ca = bleFragment(a, mtu, 10);
      const cb = bleFragment(b, mtu, 11);
      for (let lost = 0; lost < ca.length; lost++) {
        const r = bleReassemblerNew(BLE_MAX_PACKET);
        const got = feed(r, ca.filter((_, i) => i !== lost).concat(cb));
        assert.deepEqual(got, [b], `mtu ${mtu} lost chunk ${lost}`);
        assert.ok(r.dropped >= 1);
      }
    }
  });

  it("never delivers a packet with a duplicated chunk wrongly", () => {
    const a = pattern(100, 5);
    const b = pattern(40, 6);
    const ca = bleFragment(a, 23, 20);
    const cb = bleFragment(b, 23, 21);
    for (let dup = 0; dup < ca.length; dup++) {
      const seq = ca.slice(0, dup + 1).concat(ca.slice(dup)).concat(cb);
      const r = bleReassemblerNew(BLE_MAX_PACKET);
      const got = feed(r, seq);
      // A repeated FIRST restarts the packet and a repeated LAST comes after delivery, so both leave the
      // packet whole (the repeat is a counted stray); a repeated middle chunk drops it.
      const whole = dup === 0 || dup === ca.length - 1;
      assert.deepEqual(got, whole ? [a, b] : [b], `dup ${dup}`);
      assert.ok(r.dropped >= 1);
    }
  });

  it("drops swapped chunks rather than delivering wrong bytes", () => {
    const a = pattern(100, 7);
    const ca = bleFragment(a, 23, 0);
    for (let i = 1; i + 1 < ca.length; i++) {
      const sw = ca.slice();
      sw[i] = ca[i + 1];
      sw[i + 1] = ca[i];
      assert.deepEqual(feed(bleReassemblerNew(BLE_MAX_PACKET), sw), []);
    }
  });

  it("drops on FIRST mid-packet, stray continuations, empty chunks and oversize packets", () => {
    const r = bleReassemblerNew(50);
    const a = bleFragment(pattern(40, 8), 23, 1);
    assert.equal(bleAccept(r, a[0]), undefined);
    const b = bleFragment(pattern(10, 9), 23, 2);
    assert.deepEqual(bleAccept(r, b[0]), pattern(10, 9)); // FIRST while active: old one dropped
    assert.equal(r.dropped, 1);
    assert.equal(bleAccept(r, a[1]), undefined); // continuation with nothing in progress
    assert.equal(r.dropped, 2);
    assert.equal(bleAccept(r, a[0]), undefined);
    assert.equal(bleAccept(r, new Uint8Array(0)), undefined); // empty chunk abandons the packet
    assert.equal(bleAccept(r, a[1]), undefined);
    assert.equal(r.dropped, 4);
    const big = bleFragment(pattern(51, 1), 23, 3); // 51 > max 50
    assert.deepEqual(feed(r, big), []);
    assert.equal(r.dropped, 5);
    assert.deepEqual(feed(r, bleFragment(pattern(50, 2), 23, 4)), [pattern(50, 2)]);
  });

  it("never throws on random chunks, and recovers afterwards", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 60 }), (junk) => {
        const r = bleReassemblerNew(200);
        for (const c of junk) {
          const p = bleAccept(r, c);
          if (p !== undefined) assert.ok(p.length <= 200);
        }
        const p = pattern(150, 3);
        assert.deepEqual(feed(r, bleFragment(p, 23, 9)), [p]);
      }),
      { numRuns: 300 },
    );
  });

  it("has distinct 128-bit UUIDs of the sesame family", () => {
    const all = [BLE_SERVICE_UUID, BLE_NOTIFY_UUID, BLE_WRITE_UUID];
    for (const u of all) assert.match(u, /^5e5a000[1-3]-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(new Set(all).size, 3);
  });
});
