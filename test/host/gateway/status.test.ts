// What the gateway reports of itself (host/gateway/status.ts): a packet's signal goes to the device whose open
// session owns its SPI (or will, once reported open), last and smoothed; a report goes only when something changed, at most
// STATUS_SIGNALS_MAX devices at a time, and everything again after a reconnect.
import assert from "node:assert/strict";
import { readGatewayStatus, STATUS_SIGNALS_MAX, type GatewayReport } from "../../../host/backbone/gateway-status";
import type { DeviceSide } from "../../../host/gateway/device-side";
import { SignalBook, StatusReporter } from "../../../host/gateway/status";

/** A compact record on `spi` (its header and a few bytes: the book reads only the SPI). */
const record = (spi: number) => Uint8Array.of(spi >> 16, (spi >> 8) & 0xff, spi & 0xff, 0, 8, 0, 0, 1, 9, 9);
const HANDSHAKE = Uint8Array.of(0, 0, 0, 1, 5, 5, 5, 5, 5);

describe("gateway status: signal per device, queues", () => {
  it("puts a record's signal down to its session's device, keeps the last and a smoothed value, and ignores handshakes and unknown SPIs", () => {
    const b = new SignalBook();
    b.opened("0a0b", 0x123456);
    b.heard("lora", record(0x123456), { rssi: -100, snr: -2.25 });
    b.heard("lora", HANDSHAKE, { rssi: -40, snr: 9 });
    b.heard("lora", record(0x654321), { rssi: -40, snr: 9 });
    b.heard("ble:x", record(0x123456), { rssi: -60 }); // roamed to BLE: the same device
    const due = b.takeDue(10);
    assert.deepEqual(due, [{ device: "0a0b", link: "ble", rssi: -60, rssiAvg: -90 }]); // -100 + (-60 + 100) / 4
    assert.deepEqual(b.takeDue(10), [], "nothing changed since");
    b.heard("ble:x", record(0x123456), { rssi: -60 });
    assert.deepEqual(b.takeDue(10), [{ device: "0a0b", link: "ble", rssi: -60, rssiAvg: -82 }], "the smoothed value moved (-82.5)");
    b.closed(0x123456);
    b.heard("ble:x", record(0x123456), { rssi: -30 });
    assert.deepEqual(b.takeDue(10), [], "a closed session's SPI is no one's");
    // A session is reported open once its first record opened (perhaps on a worker thread, after the record
    // passed here): that record's signal waits for it.
    b.heard("lora", record(0x777777), { rssi: -111, snr: -9 });
    assert.deepEqual(b.takeDue(10), []);
    b.opened("0c", 0x777777);
    assert.deepEqual(b.takeDue(10), [{ device: "0c", link: "lora", rssi: -111, snr: -9, rssiAvg: -111 }]);
  });

  it("reports only changes, bounded, the rest in the next report, and everything after a reconnect", () => {
    const devices = { queues: () => ({ commands: 2, readings: 1, busiest: [{ device: "01", commands: 2, readings: 1 }] }), onlineCount: () => 300 } as unknown as DeviceSide;
    let messages = 0;
    const r = new StatusReporter({ backbone: () => ({ messages, bytes: messages * 10 }), devices, dropped: () => 0 }, 5000);
    const read = (now: number) => {
      const m = r.next(now);
      return m === undefined ? undefined : (readGatewayStatus(m.status) as GatewayReport);
    };
    for (let i = 0; i < 300; i++) {
      r.signals.opened(i.toString(16).padStart(4, "0"), i + 1);
      r.signals.heard("ble:b", record(i + 1), { rssi: -50 - (i % 40) });
    }
    const first = read(0)!;
    assert.deepEqual([first.commands, first.readings, first.sessions, first.queues], [2, 1, 300, [{ device: "01", commands: 2, readings: 1 }]]);
    assert.equal(first.signals.length, STATUS_SIGNALS_MAX);
    assert.equal(read(1000), undefined, "not before its period");
    const second = read(5000)!;
    assert.equal(second.signals.length, 300 - STATUS_SIGNALS_MAX, "the rest, next time");
    assert.equal(read(10_000), undefined, "nothing changed: nothing sent");
    messages = 4;
    const third = read(15_000)!;
    assert.deepEqual([third.backbone, third.signals], [{ messages: 4, bytes: 40 }, []], "the queues changed: they go, without signals");
    r.reconnected();
    const again = read(15_001)!;
    assert.equal(again.signals.length, STATUS_SIGNALS_MAX, "after a reconnect everything goes again");
  });
});
