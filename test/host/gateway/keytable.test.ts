import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { pskConfirm, pskPid, PskKeys } from "../../../firmware/handshake/psk";
import { memoryStorage } from "../../../firmware/runtime/facade";
import { epInput, epStart, epTakeOutput, Endpoint } from "../../../firmware/session/endpoint";
import { SaPolicy } from "../../../firmware/session/sa";
import { sessionSend } from "../../../firmware/session/session";
import { SUITE_CONSTRAINED } from "../../../firmware/suite";
import { hostProvider, nodeKeyPair } from "../../../host/crypto/provider";
import { DeviceGateway, LORA } from "../../../host/gateway/devices";
import { KeyTable } from "../../../host/gateway/keytable";
import { pskDevice } from "../../harness/psk-device";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const pid = (k: Uint8Array) => pskPid(hostProvider, k);
const policy = (): SaPolicy => ({ suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store: memoryStorage(), codec: undefined, compress: false });

/** The store the table hands a responder to evolve when a session confirms (endpoint.ts confirm). */
function responderStore(t: KeyTable, device: string): PskKeys | undefined {
  return t.responders(nodeKeyPair(), policy())("psk").pskStore!(Buffer.from(device, "hex"));
}

type Model = Map<string, { current: string; previous?: string }>;

type Op =
  | { op: "grant"; device: number; current: Uint8Array; previous: Uint8Array | undefined }
  | { op: "evolve"; device: number; usePrevious: boolean; session: Uint8Array }
  | { op: "evolved"; device: number; current: Uint8Array; previous: Uint8Array | undefined }
  | { op: "revoke"; device: number }
  | { op: "take" };

const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
const device = fc.nat({ max: 5 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("grant" as const), device, current: key, previous: fc.option(key, { nil: undefined }) }),
  fc.record({ op: fc.constant("evolve" as const), device, usePrevious: fc.boolean(), session: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
  fc.record({ op: fc.constant("evolved" as const), device, current: key, previous: fc.option(key, { nil: undefined }) }),
  fc.record({ op: fc.constant("revoke" as const), device }),
  fc.constant({ op: "take" as const }),
);

const name = (n: number) => `d000000${n}`;

describe("KeyTable psk index", () => {
  it("finds every live device by the pid of its current and of its previous key, and nothing else, through grants, in-place evolution, KEYS_EVOLVED and revocation", () => {
    fc.assert(fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
      const t = new KeyTable();
      const model: Model = new Map();
      const unreported = new Set<string>();
      const everSeen: Uint8Array[] = [];
      for (const o of ops) {
        if (o.op === "take") {
          const got = t.takeEvolved().map((e) => `${e.device}:${e.text}`).sort();
          const want = [...unreported].map((d) => `${d}:current=${model.get(d)!.current}${model.get(d)!.previous ? `;previous=${model.get(d)!.previous}` : ""}`).sort();
          assert.deepEqual(got, want, "takeEvolved reports the devices evolved in place since the last call");
          unreported.clear();
          continue;
        }
        const d = name(o.device);
        if (o.op === "grant") {
          const grant = `mode=psk;current=${hex(o.current)}${o.previous ? `;previous=${hex(o.previous)}` : ""}`;
          assert.equal(t.applyGrant(d, grant), "");
          model.set(d, { current: hex(o.current), previous: o.previous && hex(o.previous) });
          unreported.delete(d);
          everSeen.push(o.current, ...(o.previous ? [o.previous] : []));
        } else if (o.op === "evolve") {
          const store = responderStore(t, d);
          assert.equal(store !== undefined, model.has(d));
          if (store === undefined) continue;
          const used = o.usePrevious && store.previous ? store.previous : store.current;
          everSeen.push(Uint8Array.from(store.current), ...(store.previous ? [Uint8Array.from(store.previous)] : []));
          pskConfirm(hostProvider, store, used, o.session);
          model.set(d, { current: hex(store.current), previous: hex(store.previous!) });
          unreported.add(d);
        } else if (o.op === "evolved") {
          const text = `current=${hex(o.current)}${o.previous ? `;previous=${hex(o.previous)}` : ""}`;
          assert.equal(t.applyEvolved(d, text), model.has(d));
          if (!model.has(d)) continue;
          model.set(d, { current: hex(o.current), previous: o.previous && hex(o.previous) });
          unreported.delete(d);
          everSeen.push(o.current, ...(o.previous ? [o.previous] : []));
        } else {
          assert.equal(t.applyGrant(d, ""), "");
          model.delete(d);
          unreported.delete(d);
        }
        // Every live key is found, as the key of its device; every other key ever used is not.
        const live = new Set<string>();
        for (const [dev, k] of model) {
          for (const which of [k.current, k.previous]) {
            if (which === undefined) continue;
            live.add(which);
            const m = t.findPsk(pid(Buffer.from(which, "hex")));
            assert.ok(m, `${dev}'s key ${which.slice(0, 8)} is found`);
            assert.equal(hex(m.device), dev);
            assert.equal(hex(m.key), which);
          }
        }
        for (const k of everSeen) if (!live.has(hex(k))) assert.equal(t.findPsk(pid(k)), undefined, `a key no longer live (${hex(k).slice(0, 8)}) is not found`);
      }
    }), { numRuns: 150 });
  });

  it("looks a pid up without visiting the table: a junk or a genuine hello reads no other device's keys", () => {
    const t = new KeyTable();
    let reads = 0;
    /** A key store that counts every read of its keys, as a walk over the table would do. */
    const counted = (k: Uint8Array): PskKeys => {
      let current = k;
      let previous: Uint8Array | undefined;
      return {
        get current() { reads++; return current; }, set current(v) { current = v; },
        get previous() { reads++; return previous; }, set previous(v) { previous = v; },
      };
    };
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) {
      keys.push(randomBytes(32));
      t.setPsk(i.toString(16).padStart(8, "0"), counted(keys[i]));
    }
    reads = 0;
    for (let n = 0; n < 100; n++) assert.equal(t.findPsk(randomBytes(4)), undefined);
    assert.equal(reads, 0, "junk pids read no key store");
    const m = t.findPsk(pid(keys[1234]));
    assert.equal(hex(m!.device), (1234).toString(16).padStart(8, "0"));
    assert.ok(reads <= 2, `a genuine pid reads its own store only (${reads} reads)`);
    // Sessions confirmed by a responder evolve their stores in place: the next lookup re-indexes those
    // (and only those), the one after it nothing.
    for (const i of [3, 700, 1999]) {
      const store = responderStore(t, i.toString(16).padStart(8, "0"))!;
      pskConfirm(hostProvider, store, store.current, randomBytes(32));
    }
    reads = 0;
    assert.equal(t.findPsk(randomBytes(4)), undefined);
    assert.ok(reads > 0 && reads <= 3 * 4, `the three evolved stores are re-indexed (${reads} reads)`);
    reads = 0;
    assert.equal(t.findPsk(pid(keys[700])), undefined, "an evolved device's key before last is gone");
    assert.equal(reads, 0);
  });

  it("follows a device that handshakes again after its keys evolved (the real responder, through DeviceGateway)", () => {
    const t = new KeyTable();
    const psk = randomBytes(32);
    const id = Buffer.from("a1b2c3d4", "hex");
    for (let i = 0; i < 100; i++) t.setPsk(randomBytes(4).toString("hex"), { current: randomBytes(32), previous: undefined });
    t.setPsk(hex(id), { current: Uint8Array.from(psk), previous: undefined });
    const gw = new DeviceGateway({ config: t.responders(nodeKeyPair(), policy()), storage: memoryStorage() });
    const dev: Endpoint = pskDevice(id, psk, policy());
    dev.transport = 2; // its handshakes run on LoRa, where the gateway answers
    const handshake = (now: number) => {
      epStart(dev, now);
      for (let r = 0; r < 4; r++) {
        for (const o of epTakeOutput(dev)) gw.input(LORA, o.bytes, now);
        for (const o of gw.takeOutput()) epInput(dev, o.bytes, 2, now);
      }
      assert.ok(dev.confirmed);
      sessionSend(dev.session!, Buffer.from([0]), now); // the gateway's session confirms on a record from the device
      for (const o of epTakeOutput(dev)) gw.input(LORA, o.bytes, now);
      gw.takeOutput();
    };
    handshake(0);
    const first = t.takeEvolved();
    assert.deepEqual(first.map((e) => e.device), [hex(id)]);
    assert.equal(hex(first[0].keys.current), hex(dev.cfg.pskI!.keys.current), "both sides evolved to the same key");
    assert.equal(t.findPsk(pid(psk))?.key !== undefined, true, "the key before is kept as previous");
    handshake(1000);
    assert.equal(t.takeEvolved().length, 1);
    assert.equal(t.findPsk(pid(psk)), undefined, "two evolutions later the provisioned key is gone");
  });
});

describe("KeyTable dh keys", () => {
  type DhOp = { op: "set"; device: number; kid: number; key: Uint8Array } | { op: "grant"; device: number; kid: number; key: Uint8Array } | { op: "remove"; device: number };
  const kidName = (n: number) => `0000aa0${n}`;
  const dhOp: fc.Arbitrary<DhOp> = fc.oneof(
    fc.record({ op: fc.constant("set" as const), device, kid: fc.nat({ max: 3 }), key }),
    fc.record({ op: fc.constant("grant" as const), device, kid: fc.nat({ max: 3 }), key }),
    fc.record({ op: fc.constant("remove" as const), device }),
  );

  it("holds one kid per device and one device per kid, through grants, re-grants under another kid, a kid taken over and withdrawals", () => {
    fc.assert(fc.property(fc.array(dhOp, { maxLength: 40 }), (ops) => {
      const t = new KeyTable();
      // device -> [kid, public key hex]; a kid granted to another device leaves the one that had it.
      const model = new Map<string, [string, string]>();
      for (const o of ops) {
        const d = name(o.device);
        if (o.op === "remove") {
          t.remove(d);
          model.delete(d);
          continue;
        }
        const kid = kidName(o.kid);
        if (o.op === "set") t.setDh(d, kid, o.key);
        else assert.equal(t.applyGrant(d, `mode=dh;kid=${kid};public=${hex(o.key)}`), "");
        for (const [other, [k]] of model) if (k === kid) model.delete(other);
        model.set(d, [kid, hex(o.key)]);
      }
      for (let n = 0; n <= 5; n++) {
        const d = name(n);
        const m = model.get(d);
        assert.equal(t.has(d), m !== undefined);
        assert.equal(t.grant(d), m === undefined ? "" : `mode=dh;kid=${m[0]};public=${m[1]}`);
        assert.equal(t.peerOf(d), m?.[0] ?? d);
      }
      for (let k = 0; k <= 3; k++) {
        const holder = [...model].find(([, [kid]]) => kid === kidName(k));
        assert.equal(t.deviceOfPeer(kidName(k)), holder?.[0] ?? kidName(k));
        assert.equal(hex(t.lookupKid(Buffer.from(kidName(k), "hex")) ?? new Uint8Array(0)), holder?.[1][1] ?? "");
      }
      assert.equal(t.size, model.size);
    }));
  });

  it("grants, withdraws and names one device without walking the table (a gateway connecting is granted every device)", () => {
    const t = new KeyTable();
    for (let i = 0; i < 2000; i++) t.setDh(i.toString(16).padStart(16, "0"), i.toString(16).padStart(8, "0"), randomBytes(32));
    const dh = (t as unknown as { dh: Map<string, unknown> }).dh;
    let walks = 0;
    for (const m of ["entries", "values", "keys", "forEach", Symbol.iterator] as const) {
      const f = (dh as unknown as Record<PropertyKey, (...a: unknown[]) => unknown>)[m];
      Object.defineProperty(dh, m, { value: (...a: unknown[]) => (walks++, f.apply(dh, a)) });
    }
    const d = (1234).toString(16).padStart(16, "0");
    const grant = t.grant(d);
    assert.match(grant, /^mode=dh;kid=000004d2;public=[0-9a-f]{64}$/);
    assert.ok(t.has(d));
    assert.equal(t.peerOf(d), "000004d2");
    t.remove(d);
    assert.equal(t.applyGrant(d, grant), "");
    assert.equal(t.grant(d), grant);
    assert.equal(walks, 0, "no walk over the dh keys");
  });
});

describe("KeyTable rotation stamps", () => {
  it("tells keys rotated since those held (a gateway away when they were withdrawn) from evolved ones, for psk and dh", () => {
    const t = new KeyTable();
    const k = () => randomBytes(32).toString("hex");
    const a = k(), b = k();
    assert.equal(t.applyGrant("p1", `mode=psk;current=${a};rotated=0`), "");
    assert.equal(t.grant("p1"), `mode=psk;current=${a};rotated=0`, "the stamp goes on with the keys");
    assert.equal(t.rotatedAway("p1", `mode=psk;current=${b};previous=${a};rotated=0`), false, "evolved: the same stamp");
    assert.equal(t.rotatedAway("p1", `mode=psk;current=${b};rotated=1733390000000`), true, "rotated");
    assert.equal(t.rotatedAway("p1", ""), false, "a withdrawal is not a rotation (it ends the sessions itself)");
    assert.equal(t.rotatedAway("nobody", `mode=psk;current=${b};rotated=5`), false, "nothing held, nothing to end");
    assert.equal(t.applyGrant("d1", `mode=dh;kid=0a0b0c0d;public=${a};rotated=7`), "");
    assert.equal(t.rotatedAway("d1", `mode=dh;kid=0a0b0c0e;public=${b};rotated=8`), true);
    assert.equal(t.rotatedAway("d1", `mode=dh;kid=0a0b0c0d;public=${a};rotated=7`), false);
    // Held without a stamp (a grant from before stamps): no rotation can be told, none is assumed.
    assert.equal(t.applyGrant("p2", `mode=psk;current=${a}`), "");
    assert.equal(t.rotatedAway("p2", `mode=psk;current=${b};rotated=9`), false);
    assert.equal(t.applyGrant("p3", `mode=psk;current=${a};rotated=x`), "", "a malformed stamp is no stamp");
    assert.equal(t.grant("p3"), `mode=psk;current=${a}`);
  });
});
