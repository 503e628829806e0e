import assert from "node:assert/strict";
import { KIND_SESSION_ANSWER, KIND_SESSION_FETCH, KIND_SESSION_STATE } from "../../../host/backbone/frame";
import { grantFor, readGrant, readSessionState, sessionFetch, sessionState, spiOf } from "../../../host/backbone/session-handoff";

// sessionSave's 9 fields: secrets, peer, role, ..., the sending key index 5th.
const saved = (peer: string, outIndex: number) => ["aa", peer, "r", "bb", String(outIndex), "5007", "cc", "0", "7"].join(",");
const text = (m: { payload: Uint8Array }) => Buffer.from(m.payload).toString("utf8");

describe("session handoff messages", () => {
  it("reads back the report a gateway writes, and answers it with a grant of its top under its sending key", () => {
    const m = sessionState(Uint8Array.of(0x10, 1), 0x0a0b0c, 4096, 31, saved("1001", 3));
    assert.equal(m.kind, KIND_SESSION_STATE);
    assert.deepEqual(readSessionState(text(m)), { spi: 0x0a0b0c, top: 4096, rxTop: 31, peer: "1001", outIndex: 3, saved: saved("1001", 3) });
    const g = grantFor(m)!;
    assert.equal(g.kind, KIND_SESSION_ANSWER);
    assert.deepEqual([spiOf(g.device), text(g)], [0x0a0b0c, "grant,3,4096"]);
    assert.deepEqual(readGrant(text(g).split(",")), { outIndex: 3, top: 4096 });
    assert.equal(readGrant("grant,3,x".split(",")), undefined);
    const f = sessionFetch(0xffffff);
    assert.deepEqual([f.kind, spiOf(f.device), f.payload.length], [KIND_SESSION_FETCH, 0xffffff, 0]);
  });

  it("refuses a report with a field missing, a field not a number, or an SPI outside 1..0xffffff", () => {
    for (const bad of ["7,2048,3,not,a,session", `7,2048,x,${saved("1001", 0)}`, `0,2048,3,${saved("1001", 0)}`, `16777216,2048,3,${saved("1001", 0)}`, `7,2048,3,${saved("1001", 0)},extra`]) {
      assert.equal(readSessionState(bad), undefined, bad);
      assert.equal(grantFor({ kind: KIND_SESSION_STATE, device: Uint8Array.of(1), payload: Buffer.from(bad) }), undefined, bad);
    }
    assert.equal(spiOf(Uint8Array.of(1, 2)), -1);
  });
});
