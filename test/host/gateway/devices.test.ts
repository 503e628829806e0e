import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { CryptoProvider, keyPairWith } from "../../../firmware/crypto/provider";
import { FLAG_CONTROL, FORMAT_COMPACT, writeHeader } from "../../../firmware/record/header";
import { memoryStorage } from "../../../firmware/runtime/facade";
import { Hal } from "../../../firmware/hw/hal";
import { rtNew, rtSend, rtStart } from "../../../firmware/runtime/runtime";
import { ackCount, encodeData, messageId, messageKind, MSG_ACK, MSG_DATA } from "../../../firmware/runtime/messages";
import { Endpoint, EndpointConfig, epInput, epNew, epReady, epStart, epTakeInbox, epTakeOutput } from "../../../firmware/session/endpoint";
import { outboundRekey, outboundSeal, SaPolicy } from "../../../firmware/session/sa";
import { CTRL_KEY_UPDATE, sessionSend } from "../../../firmware/session/session";
import { SUITE_CONSTRAINED } from "../../../firmware/suite";
import { oneShotCcm } from "../../../host/crypto/aead";
import { ReusedCcm } from "../../../host/crypto/ccm";
import { hostProvider, nodeKeyPair, nodeX25519 } from "../../../host/crypto/provider";
import { hostCodec } from "../../../host/record/gpcomp";
import { DeviceGateway, LORA } from "../../../host/gateway/devices";
import { KeyTable } from "../../../host/gateway/keytable";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** The host provider with a seeded random source: two runs make the same keys, SPIs and records. */
function seeded(seed: string, fast: boolean): CryptoProvider {
  let counter = 0;
  const random = (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 32) out.set(createHash("sha256").update(`${seed}:${counter++}`).digest().subarray(0, Math.min(32, n - i)), i);
    return out;
  };
  const p: CryptoProvider = { ...hostProvider, random, keyPair: () => keyPairWith(nodeX25519, random) };
  // Without the reused-context CCM the record layer's host hooks (sealSeq, openSeq) are absent: its portable code does everything.
  return fast ? p : { ...p, ccm: (key, tagLen, nonceLen) => oneShotCcm(key, tagLen, nonceLen) };
}

type Dev = { ep: Endpoint; link: string; next: number; name: string; hello: Uint8Array[] };

/** A gateway and `n` dh devices (BLE, and LoRa for every third) with open sessions, all from `seed`. */
function world(seed: string, fast: boolean, n = 4, holdAcks = false) {
  const p = seeded(seed, fast);
  const store = memoryStorage();
  const policy = (): SaPolicy => ({ suite: SUITE_CONSTRAINED, p, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store, codec: hostCodec, compress: false });
  const gwKeys = p.keyPair();
  const registry = new Map<string, Uint8Array>();
  const base = { responderFirst: false, p, sliceSteps: 0, retryMs: 30_000, pskI: undefined, pskR: undefined, pskStore: undefined, spiLive: () => false };
  const gw = new DeviceGateway({
    storage: store, holdAcks,
    config: () => ({ ...base, initiator: false, dh: true, policy: policy(), dhI: undefined, dhR: { p, me: gwKeys, lookup: (kid) => registry.get(hex(kid)) } }),
  });
  const devs: Dev[] = [];
  for (let i = 0; i < n; i++) {
    const me = p.keyPair();
    const kid = Uint8Array.of(0x10, 0, 0, i);
    registry.set(hex(kid), me.S);
    const cfg: EndpointConfig = { ...base, initiator: true, dh: true, policy: policy(), dhR: undefined, dhI: { p, kid, me, peer: gwKeys.S } };
    const d: Dev = { ep: epNew(cfg), link: i % 3 === 2 ? LORA : `ble:d${i}`, next: 1, name: hex(kid), hello: [] };
    epStart(d.ep, 0);
    for (let r = 0; r < 4; r++) {
      for (const o of epTakeOutput(d.ep)) {
        if (r === 0) d.hello.push(o.bytes);
        gw.input(d.link, o.bytes, 0);
      }
      for (const o of gw.takeOutput()) if (o.link === d.link) epInput(d.ep, o.bytes, 1, 0);
    }
    assert.ok(d.ep.confirmed, `device ${i} has no confirmed session`);
    devs.push(d);
  }
  return { gw, devs, p };
}

/** A DATA record from a device (its next sequence number). */
function data(d: Dev, id: number, body: string): Uint8Array {
  const r = outboundSeal(d.ep.session!.out, encodeData(id, Buffer.from(body)), 0, 0);
  assert.ok(typeof r !== "number");
  return r;
}

/** Everything observable about the gateway: output, uplinks, counters, and each gateway session's state. */
function observe(w: ReturnType<typeof world>, label: string): string {
  const out = w.gw.takeOutput().map((o) => `${o.link}>${hex(o.bytes)}`);
  const ups = w.gw.takeUplinks().map((u) => `${u.device}/${u.id}/${hex(u.body)}/${u.link}/${u.at}`);
  const sessions = w.devs.map((d) => {
    const s = d.ep.session!;
    const g = (w.gw as unknown as { bySpi: Map<number, { ep: Endpoint }> }).bySpi.get(s.out.spi)!.ep.session!;
    return [g.received, g.rejected, g.sent, g.confirmed, g.keyUpdateNext, g.inb.replays, g.inb.authFailures, g.inb.rekeys, g.inb.cur.window.top, g.out.seq.next].join(",");
  });
  return JSON.stringify({ label, out, ups, stats: w.gw.stats, sessions });
}

/**
 * One script of device traffic: in order, duplicates (a message sent again in a new record), a replayed
 * record, a forged one, a control record, the device moving to its next key, an ACK of a command, a
 * record arriving on another link. `each` runs after every packet.
 */
function script(w: ReturnType<typeof world>, each: (label: string) => void): void {
  const [a, b, c, e] = w.devs;
  const feed = (d: Dev, rec: Uint8Array, label: string, link = d.link) => {
    w.gw.input(link, rec, 1000);
    each(label);
  };
  for (let k = 0; k < 5; k++) for (const d of w.devs) feed(d, data(d, d.next++, `reading ${k}`), `data ${k}`);
  const dup = data(a, a.next - 1, "reading again");
  feed(a, dup, "same id, new record");
  feed(a, dup, "the same record again (replay)");
  const forged = data(b, b.next++, "forged");
  forged[forged.length - 1] ^= 1;
  feed(b, forged, "bad tag");
  const ctl = outboundSeal(c.ep.session!.out, Uint8Array.of(CTRL_KEY_UPDATE, 1), FLAG_CONTROL, 0);
  assert.ok(typeof ctl !== "number");
  feed(c, ctl, "control: KEY_UPDATE");
  outboundRekey(e.ep.session!.out, 0);
  feed(e, data(e, e.next++, "next key"), "first record under the next key");
  feed(e, data(e, e.next++, "next key again"), "second record under it");
  assert.ok(w.gw.command(a.name, Buffer.from("cmd"), 1000) >= 0);
  each("command queued");
  feed(b, data(b, b.next++, "moved"), "a record on another link", "ble:elsewhere");
  const old = data(a, a.next++, "late");
  feed(a, data(a, a.next++, "early"), "a record ahead of one sent before it");
  feed(a, old, "the record sent before it");
}

describe("DeviceGateway on the host AEAD's hooks (records opened and sealed in place, ACKs sealed ahead)", () => {
  it("gives exactly what it gives without them: same output bytes, uplinks, counters and session state after every packet", () => {
    const proto = ReusedCcm.prototype as unknown as { [m: string]: (...a: unknown[]) => unknown };
    const calls = { openSeq: 0, sealSeq: 0, sealBatch: 0 };
    const saved = { openSeq: proto.openSeq, sealSeq: proto.sealSeq, sealBatch: proto.sealBatch };
    for (const m of ["openSeq", "sealSeq", "sealBatch"] as const) proto[m] = function (this: unknown, ...a: unknown[]) {
      calls[m]++;
      return saved[m].apply(this, a);
    };
    const used: (typeof calls)[] = [];
    let runs: string[][];
    try {
      runs = [true, false].map((fast) => {
        calls.openSeq = calls.sealSeq = calls.sealBatch = 0;
        const w = world("equal", fast);
        const seen: string[] = [];
        script(w, (label) => seen.push(observe(w, label)));
        used.push({ ...calls });
        return seen;
      });
    } finally {
      Object.assign(proto, saved);
    }
    // The run on the host CCM did take its hooks (records opened, ACKs sealed on reused contexts, some ahead
    // in batches); the other never did.
    assert.ok(used[0].openSeq >= 20 && used[0].sealSeq >= 5 && used[0].sealBatch >= 3, JSON.stringify(used));
    assert.deepEqual(used[1], { openSeq: 0, sealSeq: 0, sealBatch: 0 });
    assert.equal(runs[0].length, runs[1].length);
    for (let i = 0; i < runs[0].length; i++) assert.equal(runs[0][i], runs[1][i]);
  });

  it("takes each reading once, acknowledges every id, and refuses replays and forgeries", () => {
    const w = world("semantics", true);
    const [a] = w.devs;
    const recs = [data(a, 1, "one"), data(a, 2, "two"), data(a, 2, "two again"), data(a, 3, "three")];
    for (const r of recs) w.gw.input(a.link, r, 5);
    w.gw.input(a.link, recs[1], 5); // a replayed record
    const forged = data(a, 4, "four");
    forged[9] ^= 0x40;
    w.gw.input(a.link, forged, 5);
    const ups = w.gw.takeUplinks();
    assert.deepEqual(ups.map((u) => [u.id, Buffer.from(u.body).toString()]), [[1, "one"], [2, "two"], [3, "three"]]);
    assert.equal(w.gw.stats.duplicates, 1);
    const g = (w.gw as unknown as { bySpi: Map<number, { ep: Endpoint }> }).bySpi.get(a.ep.session!.out.spi)!.ep.session!;
    assert.equal(g.inb.replays, 1);
    assert.equal(g.inb.authFailures, 1);
    // Taken out after several records: one ACK record carries every id due, and it opens at the device.
    const out = w.gw.takeOutput();
    assert.equal(out.length, 1);
    for (const o of out) epInput(a.ep, o.bytes, 1, 6);
    const inbox = epTakeInbox(a.ep);
    assert.equal(inbox.length, 1);
    assert.equal(messageKind(inbox[0]), MSG_ACK);
    assert.deepEqual(Array.from({ length: ackCount(inbox[0]) }, (_, k) => messageId(inbox[0], k)), [1, 2, 2, 3]);
  });

  it("answers a device on the link it last heard it on, and delivers a command that the device then acknowledges", () => {
    const w = world("links", true, 2);
    const [a] = w.devs;
    w.gw.input("ble:moved", data(a, 1, "x"), 1);
    assert.deepEqual(w.gw.takeOutput().map((o) => o.link), ["ble:moved"]);
    const id = w.gw.command(a.name, Buffer.from("open"), 2);
    const down = w.gw.takeOutput();
    assert.equal(down.length, 1);
    epInput(a.ep, down[0].bytes, 1, 2);
    const cmd = epTakeInbox(a.ep)[0];
    assert.equal(messageKind(cmd), MSG_DATA);
    assert.equal(messageId(cmd, 0), id);
    sessionSend(a.ep.session!, Uint8Array.of(MSG_ACK, (id >> 16) & 0xff, (id >> 8) & 0xff, id & 0xff), 3);
    for (const o of epTakeOutput(a.ep)) w.gw.input("ble:moved", o.bytes, 3);
    w.gw.poll(100_000); // past the command's retransmission time: nothing is sent again, nothing lost
    assert.equal(w.gw.takeOutput().length, 0);
    assert.equal(w.gw.stats.commandsLost, 0);
  });
});

describe("DeviceGateway holdAcks: a reading is acknowledged only once confirmed durable", () => {
  /** The ids of the ACKs the gateway sent a device (the device opens them). */
  function acksTo(w: ReturnType<typeof world>, d: Dev): number[] {
    const ids: number[] = [];
    for (const o of w.gw.takeOutput()) {
      if (o.link !== d.link) continue;
      epInput(d.ep, o.bytes, 1, 0);
      for (const m of epTakeInbox(d.ep)) if (messageKind(m) === MSG_ACK) for (let k = 0; k < ackCount(m); k++) ids.push(messageId(m, k));
    }
    return ids;
  }

  for (const fast of [true, false]) {
    it(`holds the ACK until confirm(), answers copies by what is known, and takes a released reading in again (${fast ? "fast" : "portable"} path)`, () => {
      const w = world("hold", fast, 1, true);
      const d = w.devs[0];
      w.gw.input(d.link, data(d, 7, "r7"), 1);
      assert.deepEqual(w.gw.takeUplinks().map((u) => u.id), [7]);
      assert.deepEqual(acksTo(w, d), [], "no ACK before the reading is durable");
      w.gw.input(d.link, data(d, 7, "r7"), 2);
      assert.deepEqual(w.gw.takeUplinks(), [], "a copy of a held reading is not carried twice");
      assert.deepEqual(acksTo(w, d), [], "nor acknowledged");
      assert.equal(w.gw.confirm(d.name, 7, 3), true);
      assert.deepEqual(acksTo(w, d), [7]);
      assert.equal(w.gw.confirm(d.name, 7, 3), false, "confirmed once");
      w.gw.input(d.link, data(d, 7, "r7"), 4);
      assert.deepEqual(w.gw.takeUplinks(), [], "a copy of a confirmed reading is not carried again");
      assert.deepEqual(acksTo(w, d), [7], "but acknowledged again: its ACK was lost");
      w.gw.input(d.link, data(d, 8, "r8"), 5);
      assert.deepEqual(w.gw.takeUplinks().map((u) => u.id), [8]);
      w.gw.release(d.name, 8); // the backbone could not take it
      w.gw.input(d.link, data(d, 8, "r8"), 6);
      assert.deepEqual(w.gw.takeUplinks().map((u) => u.id), [8], "the device's copy of a released reading is carried in its place");
      assert.deepEqual(acksTo(w, d), []);
      w.gw.confirm(d.name, 8, 7);
      assert.deepEqual(acksTo(w, d), [8]);
    });
  }
});

describe("DeviceGateway: what moves a device to another session", () => {
  it("a replayed hello and a forged record on the session it made do not take the device's commands", () => {
    const w = world("replay", true, 1);
    const d = w.devs[0];
    const bySpi = (w.gw as unknown as { bySpi: Map<number, { ep: Endpoint }> }).bySpi;
    const before = new Set(bySpi.keys());
    for (const h of d.hello) w.gw.input("ble:elsewhere", h, 1); // a replay from another connection: an endpoint of its own
    w.gw.takeOutput();
    const made = [...bySpi.keys()].filter((k) => !before.has(k));
    assert.equal(made.length, 1, "the replayed hello made a session of its own");
    const forged = new Uint8Array(40);
    forged.set([made[0] >> 16, (made[0] >> 8) & 0xff, made[0] & 0xff], 0);
    w.gw.input("ble:elsewhere", forged, 2);
    assert.ok(w.gw.command(d.name, Buffer.from("led on"), 3) >= 0);
    const got: string[] = [];
    for (const o of w.gw.takeOutput()) {
      if (o.link !== d.link) continue;
      epInput(d.ep, o.bytes, 1, 3);
      for (const m of epTakeInbox(d.ep)) if (messageKind(m) === MSG_DATA) got.push(Buffer.from(m.subarray(4)).toString());
    }
    assert.deepEqual(got, ["led on"], "the command reached the device in its own session");
  });

  it("forgets the SPI of a session that never confirmed after a minute, and keeps the device's own", () => {
    const w = world("expire", true, 1);
    const d = w.devs[0];
    const bySpi = (w.gw as unknown as { bySpi: Map<number, { ep: Endpoint }> }).bySpi;
    const mine = d.ep.session!.out.spi;
    for (const h of d.hello) w.gw.input("ble:elsewhere", h, 1000);
    w.gw.takeOutput();
    assert.equal(bySpi.size, 2);
    w.gw.poll(30_000);
    assert.equal(bySpi.size, 2, "half a minute: still there");
    w.gw.poll(61_001);
    assert.deepEqual([...bySpi.keys()], [mine], "a minute on, only the device's confirmed session is left");
    w.gw.poll(7_200_000);
    assert.deepEqual([...bySpi.keys()], [mine], "the device's current session is never forgotten for age");
    w.gw.input(d.link, data(d, 9, "r9"), 7_200_001);
    assert.deepEqual(w.gw.takeUplinks().map((u) => u.id), [9]);
  });
});

describe("DeviceGateway: a receiving key retired at the forgery limit", () => {
  /** A psk board's runtime on a LoRa radio (virtual clock), and the gateway it reaches; `drop` may eat downlinks. */
  function loraWorld(drop: (frame: Uint8Array) => boolean) {
    const clock = { t: 0 };
    const keys = new KeyTable();
    const id = "c0ffee01", psk = Buffer.alloc(32, 7);
    keys.setPsk(id, { current: Uint8Array.from(psk), previous: undefined });
    const policy = (): SaPolicy => ({ suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store: memoryStorage(), codec: hostCodec, compress: false });
    const gw = new DeviceGateway({ config: keys.responders(nodeKeyPair(), policy()), storage: memoryStorage() });
    const up: Uint8Array[] = [];
    let hear: ((f: Uint8Array) => void) | undefined, tick: (() => void) | undefined;
    const hal: Hal = {
      now: () => clock.t, clockStepMs: 0, every: (_ms, fn) => void (tick = fn), storage: memoryStorage(), provider: hostProvider, codec: undefined, ble: undefined,
      lora: { listen: (f) => void (hear = f), send: (f) => void up.push(Uint8Array.from(f)), region: "EU868", dataRate: 5 },
      sensor: () => 0, led: () => {}, log: () => {},
    };
    const rt = rtNew(hal, `mode=psk;order=I;id=${id};psk=${psk.toString("hex")}`);
    rtStart(rt, 100);
    const uplinks: string[] = [];
    const step = () => {
      clock.t += 100;
      tick!();
      for (const f of up.splice(0)) gw.input(LORA, f, clock.t);
      gw.poll(clock.t);
      for (const o of gw.takeOutput()) if (!drop(o.bytes)) hear!(o.bytes);
      for (const u of gw.takeUplinks()) uplinks.push(Buffer.from(u.body).toString());
    };
    return { clock, gw, rt, up, uplinks, step };
  }

  it("recovers without a new handshake when the first KEY_UPDATE is lost: the device's next reading is delivered and acknowledged", () => {
    let dropping = false;
    const dropped: Uint8Array[] = [];
    const w = loraWorld((f) => dropping && (dropped.push(f), true));
    while (w.clock.t < 20_000 && !epReady(w.rt.ep)) w.step();
    assert.ok(epReady(w.rt.ep), "handshake over LoRa");
    rtSend(w.rt, Buffer.from("before"));
    while (w.clock.t < 40_000 && w.rt.sender.pending.length > 0) w.step();
    assert.deepEqual(w.uplinks, ["before"]);
    // 1,100 forged records on the device's SPI (in clear on the air): fresh sequence numbers, bad tags. The
    // gateway retires its receiving key and asks the device to move on; that request is lost.
    const s = w.rt.ep.session!;
    dropping = true;
    for (let n = 0; n < 1100; n++) {
      const f = randomBytes(8 + 12 + 8); // header, a reading's worth of "ciphertext", tag
      writeHeader(FORMAT_COMPACT, { spi: s.out.spi, flags: 0, length: 12, seqHi: 0, seq: 5000 + n }, f, 0);
      w.gw.input(LORA, f, w.clock.t);
    }
    w.step();
    dropping = false;
    assert.equal(dropped.length, 1, "one KEY_UPDATE request, lost");
    const handshakes = w.rt.ep.handshakes;
    // The next reading, a second later, goes under the retired key: refused. Its next try (LoRa: 30 s on)
    // draws a new request, and the device moves to its next key; the try after that is delivered.
    w.clock.t += 1000;
    const sentAt = w.clock.t;
    rtSend(w.rt, Buffer.from("after"));
    let movedAt = -1;
    while (w.clock.t < sentAt + 90_000 && w.rt.sender.pending.length > 0) {
      w.step();
      if (movedAt < 0 && s.out.epoch.index === 1) movedAt = w.clock.t;
    }
    assert.ok(movedAt > 0 && movedAt - sentAt <= 60_000, `the device is on its next key within one reading period (60 s): ${movedAt - sentAt} ms`);
    assert.deepEqual(w.uplinks, ["before", "after"], "the reading is delivered");
    assert.equal(w.rt.sender.pending.length, 0, "and acknowledged");
    assert.deepEqual(w.rt.lostIds, [], "nothing given up");
    assert.equal(w.rt.ep.handshakes, handshakes, "without a new handshake");
    assert.equal(w.rt.ep.session, s, "in the same session");
    assert.equal(s.out.epoch.index, 1, "on the next key, one step on");
  });
});

describe("DeviceGateway.end: a device revoked or rotated", () => {
  it("ends the device's sessions on every endpoint it has, and no other device's, without a walk over every SPI", () => {
    const w = world("end", true, 6);
    const [a, b] = [w.devs[1], w.devs[4]];
    // Device a handshakes again on another link (its first session stays until superseded), and one of its
    // hellos is replayed from elsewhere (a session of its own that never confirms): three endpoints in all.
    const again: Dev = { ep: epNew(a.ep.cfg), link: "ble:d1-again", next: 1, name: a.name, hello: [] };
    epStart(again.ep, 1);
    for (let r = 0; r < 4; r++) {
      for (const o of epTakeOutput(again.ep)) w.gw.input(again.link, o.bytes, 1);
      for (const o of w.gw.takeOutput()) if (o.link === again.link) epInput(again.ep, o.bytes, 1, 1);
    }
    assert.ok(again.ep.confirmed);
    for (const h of a.hello) w.gw.input("ble:elsewhere", h, 1);
    w.gw.takeOutput();
    const bySpi = (w.gw as unknown as { bySpi: Map<number, { ep: Endpoint }> }).bySpi;
    const ofA = [...bySpi.values()].filter((e) => e.ep.session !== undefined && hex(e.ep.session.peer) === a.name).length;
    assert.equal(ofA, 3);
    let walks = 0;
    for (const m of ["entries", "values", "keys", "forEach", Symbol.iterator] as const) {
      const f = (bySpi as unknown as Record<PropertyKey, (...x: unknown[]) => unknown>)[m];
      Object.defineProperty(bySpi, m, { value: (...x: unknown[]) => (walks++, f.apply(bySpi, x)) });
    }
    assert.equal(w.gw.end(a.name, 2), 3, "three open sessions ended");
    assert.equal(walks, 0, "no walk over the SPIs");
    const unknown = w.gw.stats.unknownSpi;
    w.gw.input(a.link, data(a, a.next++, "old"), 3);
    w.gw.input(again.link, data(again, again.next++, "new"), 3);
    w.gw.input(b.link, data(b, b.next++, "other"), 3);
    assert.equal(w.gw.stats.unknownSpi, unknown + 2, "neither of a's sessions takes a record");
    assert.deepEqual(w.gw.takeUplinks().map((u) => `${u.device}:${Buffer.from(u.body).toString()}`), [`${b.name}:other`]);
  });
});
