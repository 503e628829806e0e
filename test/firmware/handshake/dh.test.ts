import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  dhI1, dhI1Finish, dhI1FinishNeeds, dhI1Needs, dhI2, dhI2Needs, dhR1, dhR1Finish, dhR2, DhInitiator, DhNeed, DhResponder,
  Established, keyPair,
} from "../../../firmware/handshake/dh";
import { HS_FAIL, SIZE_DH_I1, SIZE_DH_I2, SIZE_DH_R1, SIZE_DH_R2 } from "../../../firmware/handshake/wire";
import { portableProvider } from "../../../firmware/crypto/provider";
import { CryptoProvider } from "../../../firmware/crypto/provider";
import { hostProvider, nodeKeyPair, nodeX25519 } from "../../../host/crypto/provider";

const portable = portableProvider((n) => randomBytes(n));

function setup(pi: CryptoProvider) {
  const gw = nodeKeyPair();
  const dev = nodeKeyPair();
  const kid = Uint8Array.from([0xd1, 0x5e, 0xa5, 0xe1]);
  const devices = new Map([[Buffer.from(kid).toString("hex"), dev.S]]);
  const r: DhResponder = { p: hostProvider, me: gw, lookup: (k) => devices.get(Buffer.from(k).toString("hex")) };
  const i: DhInitiator = { p: pi, kid, me: dev, peer: gw.S };
  return { r, i, gw, dev, kid };
}

const run = (p: CryptoProvider, needs: DhNeed[]) => needs.map(([s, u]) => p.x25519(s, u));

/** Order R end to end; returns the transcript bytes and both sides' results. */
function orderR(s: ReturnType<typeof setup>, tamper?: (which: number, m: Uint8Array) => void) {
  const pend = dhR1(s.r, nodeKeyPair(), 0x0a0b0c);
  const r1 = Uint8Array.from(pend.msg);
  tamper?.(1, r1);
  const eph = keyPair(s.i.p);
  const needs = dhI2Needs(s.i, eph, r1);
  if (typeof needs === "number") return { fail: "i" };
  const out = dhI2(s.i, eph, r1, run(s.i.p, needs), 0x010203);
  if (typeof out === "number") return { fail: "i" };
  const i2 = Uint8Array.from(out.msg);
  tamper?.(2, i2);
  const r = dhR1Finish(s.r, pend, i2, nodeX25519);
  return { r1, i2, ei: out.est, er: r, fail: typeof r === "number" ? "r" : undefined };
}

function orderI(s: ReturnType<typeof setup>, tamper?: (which: number, m: Uint8Array) => void) {
  const eph = keyPair(s.i.p);
  const pend = dhI1(s.i, eph, run(s.i.p, dhI1Needs(s.i, eph)), 0x010203);
  if (typeof pend === "number") return { fail: "i" };
  const i1 = Uint8Array.from(pend.msg);
  tamper?.(1, i1);
  const out = dhR2(s.r, nodeKeyPair, i1, nodeX25519, 0x0a0b0c);
  if (typeof out === "number") return { fail: "r" };
  const r2 = Uint8Array.from(out.msg);
  tamper?.(2, r2);
  const needs = dhI1FinishNeeds(s.i, pend, r2);
  if (typeof needs === "number") return { fail: "i" };
  const ei = dhI1Finish(s.i, pend, r2, run(s.i.p, needs));
  return { i1, r2, ei, er: out.est, fail: typeof ei === "number" ? "i" : undefined };
}

function agree(a: Established | number | undefined, b: Established | number | undefined) {
  assert.ok(a && b && typeof a !== "number" && typeof b !== "number");
  assert.deepEqual(Buffer.from(a.masterKey), Buffer.from(b.masterKey));
  assert.deepEqual(Buffer.from(a.sessionHash), Buffer.from(b.sessionHash));
  assert.equal(a.localSpi, b.peerSpi);
  assert.equal(a.peerSpi, b.localSpi);
}

describe("dh handshake", () => {
  for (const [label, pi] of [["host initiator", hostProvider], ["portable initiator", portable]] as const) {
    it(`order R (responder first) establishes one key, ${label}`, () => {
      const s = setup(pi);
      const o = orderR(s);
      agree(o.ei, o.er);
      assert.equal(o.r1!.length, SIZE_DH_R1);
      assert.equal(o.i2!.length, SIZE_DH_I2);
      assert.deepEqual(Buffer.from((o.er as Established).peer), Buffer.from(s.kid), "the responder learns the kid");
    });
    it(`order I (initiator first) establishes one key, ${label}`, () => {
      const s = setup(pi);
      const o = orderI(s);
      agree(o.ei, o.er);
      assert.equal(o.i1!.length, SIZE_DH_I1);
      assert.equal(o.r2!.length, SIZE_DH_R2);
    });
  }

  it("sizes: each message fits one LoRa DR0 frame (51 B), and each order is under 100 B", () => {
    assert.ok(Math.max(SIZE_DH_R1, SIZE_DH_I2, SIZE_DH_I1, SIZE_DH_R2) <= 51);
    assert.ok(SIZE_DH_R1 + SIZE_DH_I2 < 100 && SIZE_DH_I1 + SIZE_DH_R2 < 100);
  });

  it("fails on a change to any byte of either message, in both orders", () => {
    const s = setup(hostProvider);
    for (const order of [orderR, orderI]) {
      for (const which of [1, 2]) {
        const n = which === 1 ? (order === orderR ? SIZE_DH_R1 : SIZE_DH_I1) : order === orderR ? SIZE_DH_I2 : SIZE_DH_R2;
        for (let at = 0; at < n; at++) {
          const o = order(s, (w, m) => { if (w === which) m[at] ^= 0x01; });
          const ok = !o.fail && typeof o.ei !== "number" && typeof o.er !== "number" &&
            Buffer.from(o.ei!.masterKey).equals(Buffer.from(o.er!.masterKey));
          assert.ok(!ok, `${order.name} message ${which} byte ${at} changed without failing`);
        }
      }
    }
  });

  it("never shows the initiator's kid or static key on the wire", () => {
    const s = setup(hostProvider);
    for (let n = 0; n < 20; n++) {
      const a = orderR(s);
      const b = orderI(s);
      for (const msgs of [[a.r1, a.i2], [b.i1, b.r2]]) {
        const wire = Buffer.concat(msgs.map((m) => Buffer.from(m!)));
        assert.equal(wire.indexOf(Buffer.from(s.kid)), -1);
        assert.equal(wire.indexOf(Buffer.from(s.dev.S)), -1);
      }
    }
  });

  it("refuses a man in the middle who lacks the pinned key", () => {
    const s = setup(hostProvider);
    // Mallory answers the device with her own static key; the device pins the real one.
    const mallory: DhResponder = { ...s.r, me: nodeKeyPair() };
    const pend = dhR1(mallory, nodeKeyPair(), 1);
    const eph = keyPair(s.i.p);
    const out = dhI2(s.i, eph, pend.msg, run(s.i.p, dhI2Needs(s.i, eph, pend.msg) as DhNeed[]), 2);
    assert.notEqual(out, HS_FAIL);
    assert.equal(dhR1Finish(mallory, pend, (out as { msg: Uint8Array }).msg, nodeX25519), HS_FAIL);
    // A device claiming a registered kid without its static key shares no session key with the responder.
    // In order R the responder only finds out at the first record, which cannot open under its key.
    const stranger: DhInitiator = { ...s.i, me: nodeKeyPair() };
    const r = orderR({ ...s, i: stranger });
    assert.ok(typeof r.ei !== "number" && typeof r.er !== "number");
    assert.notDeepEqual(Buffer.from(r.ei!.masterKey), Buffer.from(r.er!.masterKey));
    assert.equal(orderI({ ...s, i: stranger }).fail, "i");
  });

  it("refuses replayed and reflected messages", () => {
    const s = setup(hostProvider);
    const first = orderR(s);
    // I2 from an old exchange against a new R1: the responder's new ephemeral key does not match.
    const fresh = dhR1(s.r, nodeKeyPair(), 9);
    assert.equal(dhR1Finish(s.r, fresh, first.i2!, nodeX25519), HS_FAIL);
    // Reflection: R1 sent back to the responder as if it were I2, and I2 back to the device.
    assert.equal(dhR1Finish(s.r, fresh, fresh.msg, nodeX25519), HS_FAIL);
    assert.equal(dhI2Needs(s.i, keyPair(hostProvider), first.i2!), HS_FAIL);
    // Order I: R2 of one exchange against the pending state of another.
    const a = orderI(s);
    const eph = keyPair(s.i.p);
    const pend = dhI1(s.i, eph, run(s.i.p, dhI1Needs(s.i, eph)), 5);
    if (typeof pend === "number") throw new Error("I1");
    const needs = dhI1FinishNeeds(s.i, pend, a.r2!);
    assert.equal(dhI1Finish(s.i, pend, a.r2!, run(s.i.p, needs as DhNeed[])), HS_FAIL);
  });

  it("refuses low-order ephemeral keys (all-zero shared secrets)", () => {
    const s = setup(hostProvider);
    for (const bad of [new Uint8Array(32), Uint8Array.from([1, ...new Array(31).fill(0)])]) {
      const o = orderR(s, (w, m) => { if (w === 1) m.set(bad, 7); });
      assert.ok(o.fail);
    }
  });

  it("costs each side at most 4 X25519 operations", () => {
    let count = 0;
    const counting: CryptoProvider = { ...hostProvider, x25519: (a, b) => (count++, nodeX25519(a, b)) };
    const s = setup(counting);
    keyPair(counting);
    const eph = keyPair(counting);
    count = 1; // the ephemeral key pair above
    const pend = dhR1(s.r, nodeKeyPair(), 1);
    dhI2(s.i, eph, pend.msg, run(counting, dhI2Needs(s.i, eph, pend.msg) as DhNeed[]), 2);
    assert.equal(count, 4);
    let rc = 1; // the responder's ephemeral key pair
    const eph2 = keyPair(hostProvider);
    const p2 = dhR1(s.r, nodeKeyPair(), 1);
    const i2 = dhI2({ ...s.i, p: hostProvider }, eph2, p2.msg, run(hostProvider, dhI2Needs(s.i, eph2, p2.msg) as DhNeed[]), 2);
    dhR1Finish(s.r, p2, (i2 as { msg: Uint8Array }).msg, (a, b) => (rc++, nodeX25519(a, b)));
    assert.equal(rc, 4);
  });
});
