import assert from "node:assert/strict";
import fc from "fast-check";
import { COMMAND_STATE, decodeBatch, encodeBatch, FrameError, KIND_SESSION_EVENT, SESSION_OPENED, type SessionEvent } from "../../../host/backbone/frame";
import { allSessionsClosed, commandEvent, readSessionEvent, sessionEvent } from "../../../host/backbone/session-event";

/** Through the batch codec and back, as the controller receives it. */
function wire(m: SessionEvent): SessionEvent {
  const back = decodeBatch(encodeBatch([m]));
  assert.ok(!(back instanceof FrameError), String(back));
  assert.equal(back.length, 1);
  assert.equal(back[0].kind, KIND_SESSION_EVENT);
  return back[0] as SessionEvent;
}

describe("backbone SESSION_EVENT: a gateway's session reports", () => {
  it("round-trips open and close with device, spi and text through a batch", () => {
    const device = fc.uint8Array({ minLength: 1, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"));
    fc.assert(fc.property(fc.constantFrom("open" as const, "close" as const), device, fc.integer({ min: 0, max: 0xffffff }), fc.string({ maxLength: 60 }), (event, dev, spi, text) => {
      assert.deepEqual(readSessionEvent(wire(sessionEvent(event, dev, spi, text))), { event, device: dev, spi, text });
    }), { numRuns: 300 });
  });

  it("says 'every session closed' with an empty device", () => {
    assert.deepEqual(readSessionEvent(wire(allSessionsClosed("gateway restarted"))), { event: "all-closed", text: "gateway restarted" });
  });

  it("round-trips what became of a command: its message id and state", () => {
    for (const state of ["queued", "acked", "lost", "refused"] as const) {
      assert.deepEqual(readSessionEvent(wire(commandEvent("0a0b", 0xabcdef, state))), { event: "command", device: "0a0b", id: 0xabcdef, state });
    }
    assert.throws(() => commandEvent("0a0b", -1, "queued"), /24-bit/);
    const odd: SessionEvent = { kind: KIND_SESSION_EVENT, device: Uint8Array.of(1), event: COMMAND_STATE, detail: Uint8Array.of(0, 0, 1, 0x78) };
    assert.match(String(readSessionEvent(wire(odd))), /unknown state "x"/);
  });

  it("refuses what it cannot encode, and reports (never throws on) what a peer sends wrong", () => {
    assert.throws(() => sessionEvent("open", "0102", 1 << 24, "ble:x"), /24-bit/);
    assert.throws(() => sessionEvent("open", "not hex", 1, "ble:x"), /hex/);
    assert.throws(() => sessionEvent("open", "", 1, "ble:x"), /hex/);
    const short: SessionEvent = { kind: KIND_SESSION_EVENT, device: Uint8Array.of(1), event: SESSION_OPENED, detail: Uint8Array.of(1, 2) };
    assert.match(String(readSessionEvent(wire(short))), /shorter/);
    const anonymousOpen: SessionEvent = { kind: KIND_SESSION_EVENT, device: new Uint8Array(0), event: SESSION_OPENED, detail: Uint8Array.of(0, 0, 1) };
    assert.match(String(readSessionEvent(wire(anonymousOpen))), /without a device/);
  });
});
