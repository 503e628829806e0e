import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  pskConfirm, pskI1, pskI1Finish, pskI2, pskPid, pskR1, pskR1Finish, pskR2, PskInitiator, PskKeys, PskResponder,
} from "../../../firmware/handshake/psk";
import { HS_FAIL, SIZE_PSK_I1, SIZE_PSK_I2, SIZE_PSK_R1, SIZE_PSK_R2 } from "../../../firmware/handshake/wire";
import { portableProvider } from "../../../firmware/crypto/provider";
import { hostProvider } from "../../../host/crypto/provider";

const portable = portableProvider((n) => randomBytes(n));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** A responder that knows one device's key store, matching its pid against current and previous. */
function responderFor(id: Uint8Array, keys: PskKeys): PskResponder {
  return {
    p: hostProvider,
    lookup: (pid) => {
      for (const k of [keys.current, keys.previous]) if (k && hex(pskPid(hostProvider, k)) === hex(pid)) return { device: id, key: k };
      return undefined;
    },
  };
}

function pair() {
  const psk = randomBytes(32);
  const id = Uint8Array.from([1, 2, 3, 4]);
  const dev: PskKeys = { current: Uint8Array.from(psk), previous: undefined };
  const gw: PskKeys = { current: Uint8Array.from(psk), previous: undefined };
  const i: PskInitiator = { p: portable, id, keys: dev };
  return { i, r: responderFor(id, gw), dev, gw, id };
}

function orderR(s: ReturnType<typeof pair>, key = s.dev.current) {
  const pend = pskR1(hostProvider, randomBytes(8), 0x00aa01);
  const out = pskI2(s.i, key, pend.msg, randomBytes(8), 0x00bb02);
  assert.notEqual(out, HS_FAIL);
  const { msg, est } = out as Exclude<typeof out, number>;
  const r = pskR1Finish(s.r, pend, msg);
  return { r1: pend.msg, i2: msg, ei: est, r };
}

function orderI(s: ReturnType<typeof pair>) {
  const pend = pskI1(s.i, s.dev.current, randomBytes(8), 0x00bb02);
  const out = pskR2(s.r, pend.msg, randomBytes(8), 0x00aa01);
  if (typeof out === "number") return { i1: pend.msg, fail: true as const };
  const ei = pskI1Finish(s.i, pend, out.msg);
  return { i1: pend.msg, r2: out.msg, ei, er: out.est, key: out.key, fail: typeof ei === "number" };
}

describe("psk handshake", () => {
  it("order R and order I each establish one key in at most 64 bytes", () => {
    const s = pair();
    const a = orderR(s);
    assert.ok(typeof a.r !== "number");
    assert.deepEqual(hex(a.ei.masterKey), hex(a.r.est.masterKey));
    assert.equal(a.r1.length + a.i2.length, SIZE_PSK_R1 + SIZE_PSK_I2);
    const b = orderI(s);
    assert.ok(!b.fail && typeof b.ei !== "number");
    assert.deepEqual(hex(b.ei.masterKey), hex(b.er!.masterKey));
    assert.ok(SIZE_PSK_R1 + SIZE_PSK_I2 <= 64 && SIZE_PSK_I1 + SIZE_PSK_R2 <= 64);
  });

  it("fails on a change to any byte, and with the wrong key", () => {
    const s = pair();
    const pend = pskR1(hostProvider, randomBytes(8), 7);
    const out = pskI2(s.i, s.dev.current, pend.msg, randomBytes(8), 8) as { msg: Uint8Array };
    for (let at = 0; at < out.msg.length; at++) {
      const m = Uint8Array.from(out.msg);
      m[at] ^= 1;
      assert.equal(pskR1Finish(s.r, pend, m), HS_FAIL, `I2 byte ${at}`);
    }
    for (let at = 0; at < pend.msg.length; at++) {
      const r1 = Uint8Array.from(pend.msg);
      r1[at] ^= 1;
      const o = pskI2(s.i, s.dev.current, r1, randomBytes(8), 8);
      if (typeof o === "number") continue;
      assert.equal(pskR1Finish(s.r, pend, o.msg), HS_FAIL, `R1 byte ${at}`);
    }
    const wrong = pskI2({ ...s.i }, randomBytes(32), pend.msg, randomBytes(8), 8) as { msg: Uint8Array };
    assert.equal(pskR1Finish(s.r, pend, wrong.msg), HS_FAIL);
    const i1 = pskI1(s.i, s.dev.current, randomBytes(8), 3).msg;
    const r2 = pskR2(s.r, i1, randomBytes(8), 4);
    assert.ok(typeof r2 !== "number");
    const r2msg: Uint8Array = r2.msg;
    for (let at = 0; at < r2msg.length; at++) {
      const m = Uint8Array.from(r2msg);
      m[at] ^= 1;
      assert.equal(pskI1Finish(s.i, pskI1(s.i, s.dev.current, randomBytes(8), 3), m), HS_FAIL);
    }
  });

  it("evolves the key after each confirmed session: pids never repeat, old keys are gone", () => {
    const s = pair();
    const seen = new Set<string>();
    const keysSeen: string[] = [];
    for (let n = 0; n < 10; n++) {
      const pid = hex(pskPid(hostProvider, s.dev.current));
      assert.ok(!seen.has(pid), "a pid repeated: sessions would be linkable");
      seen.add(pid);
      keysSeen.push(hex(s.dev.current));
      const o = orderR(s);
      assert.ok(typeof o.r !== "number");
      pskConfirm(hostProvider, s.gw, o.r.key, o.r.est.sessionHash);
      pskConfirm(portable, s.dev, s.dev.current, o.ei.sessionHash);
    }
    // Only the last two keys survive anywhere: the rest cannot be recomputed, so their sessions stay secret.
    const held = new Set([s.dev.current, s.dev.previous, s.gw.current, s.gw.previous].map((k) => hex(k!)));
    for (const k of keysSeen.slice(0, -1)) assert.ok(!held.has(k));
  });

  it("resynchronises when one side missed an update", () => {
    const s = pair();
    const o = orderR(s);
    assert.ok(typeof o.r !== "number");
    // The gateway confirmed (saw the device's first record); the device never saw the gateway's.
    pskConfirm(hostProvider, s.gw, o.r.key, o.r.est.sessionHash);
    const again = orderR(s); // the device still uses its current key, which is the gateway's previous
    assert.ok(typeof again.r !== "number", "the gateway accepts the previous key");
    pskConfirm(hostProvider, s.gw, again.r.key, again.r.est.sessionHash);
    pskConfirm(portable, s.dev, s.dev.current, again.ei.sessionHash);
    assert.equal(hex(s.dev.current), hex(s.gw.current));
    const third = orderI(s);
    assert.ok(!third.fail);
  });

  it("hides the device's identity: its id never appears on the wire", () => {
    const s = pair();
    const o = orderR(s);
    const wire = Buffer.concat([o.r1, o.i2]);
    assert.equal(wire.indexOf(Buffer.from(s.id)), -1);
  });
});
