// GATEWAY_STATUS's body (host/backbone/gateway-status.ts): the layout docs/PROTOCOL.md section 7 gives, byte by
// byte; every report round-trips; malformed bodies are refused with a reason, never thrown.
import assert from "node:assert/strict";
import fc from "fast-check";
import { gatewayStatus, readGatewayStatus, STATUS_QUEUES_MAX, STATUS_SIGNALS_MAX, type GatewayReport } from "../../../host/backbone/gateway-status";
import { KIND_GATEWAY_STATUS } from "../../../host/backbone/frame";

const hexId = fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b) => Buffer.from(b).toString("hex"));
const n = fc.oneof(fc.nat({ max: 300 }), fc.maxSafeNat());
const reportArb: fc.Arbitrary<GatewayReport> = fc.record({
  backbone: fc.record({ messages: n, bytes: n }), commands: n, readings: n, sessions: n, dropped: n,
  queues: fc.array(fc.record({ device: hexId, commands: n, readings: n }), { maxLength: STATUS_QUEUES_MAX }),
  signals: fc.array(fc.oneof(
    fc.record({ device: hexId, link: fc.constant("ble" as const), rssi: fc.integer({ min: -127, max: 0 }), rssiAvg: fc.integer({ min: -127, max: 0 }) }),
    fc.record({ device: hexId, link: fc.constant("lora" as const), rssi: fc.integer({ min: -127, max: 0 }), snr: fc.integer({ min: -80, max: 40 }).map((q) => q / 4), rssiAvg: fc.integer({ min: -127, max: 0 }) }),
  ), { maxLength: 20 }),
});

describe("GATEWAY_STATUS body", () => {
  it("has the documented layout", () => {
    const m = gatewayStatus({
      backbone: { messages: 3, bytes: 300 }, commands: 1, readings: 2, sessions: 4, dropped: 0,
      queues: [{ device: "0a0b", commands: 1, readings: 2 }],
      signals: [{ device: "0a0b", link: "lora", rssi: -104, snr: -3.5, rssiAvg: -101 }, { device: "0c", link: "ble", rssi: -67, rssiAvg: -70 }],
    });
    assert.equal(m.kind, KIND_GATEWAY_STATUS);
    // 03 | ac02 (300) | 01 | 02 | 04 | 00 | qn 01: 02 0a0b 01 02 | sn 02: 02 0a0b 02 98 (-104) f2 (-14 quarters) 9b (-101)
    //                                                              01 0c 01 bd (-67) 80 (no snr) ba (-70)
    assert.equal(Buffer.from(m.status).toString("hex"), "03" + "ac02" + "01" + "02" + "04" + "00" + "01" + "020a0b0102" + "02" + "020a0b0298f29b" + "010c01bd80ba");
  });

  it("round-trips any report within its bounds", () => {
    fc.assert(fc.property(reportArb, (r) => {
      const back = readGatewayStatus(gatewayStatus(r).status);
      assert.deepEqual(back, JSON.parse(JSON.stringify(r)));
    }), { numRuns: 300 });
  });

  it("refuses a report beyond its bounds (a caller bug), and a body that breaks them (a peer's: counted, not thrown)", () => {
    const base = { backbone: { messages: 0, bytes: 0 }, commands: 0, readings: 0, sessions: 0, dropped: 0, queues: [], signals: [] };
    assert.throws(() => gatewayStatus({ ...base, signals: Array.from({ length: STATUS_SIGNALS_MAX + 1 }, () => ({ device: "01", link: "ble" as const, rssi: -50, rssiAvg: -50 })) }), RangeError);
    assert.throws(() => gatewayStatus({ ...base, queues: [{ device: "", commands: 0, readings: 0 }] }), RangeError);
    const cases: [string, RegExp][] = [
      ["", /messages: not a uvarint/],
      ["0000000000" + "00", /queue count/],
      ["000000000000" + "11", /17 queues/],
      ["000000000000" + "00" + "01" + "0101" + "03c480c4", /link 3/],
      ["000000000000" + "00" + "01" + "0101" + "01c4", /truncated/],
      ["000000000000" + "00" + "01" + "0501", /device of 5 bytes/],
      ["000000000000" + "00" + "00" + "ff", /1 bytes after/],
      ["000000000000" + "00" + "8002", /256|signals|uvarint/],
    ];
    for (const [hex, why] of cases) {
      const r = readGatewayStatus(Buffer.from(hex, "hex"));
      assert.equal(typeof r, "string", hex);
      assert.match(r as string, why, hex);
    }
  });

  it("never throws on garbage", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => void readGatewayStatus(junk)), { numRuns: 2000 });
  });
});
