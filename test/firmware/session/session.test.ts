import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { hostProvider } from "../../../host/crypto/provider";
import { portableProvider, CryptoProvider } from "../../../firmware/crypto/provider";
import {
  addTransport, deleteTransport, queryTransports, RX_CLOSED, RX_DATA, Session, sessionAbort, sessionClose, sessionNew,
  sessionReceive, sessionRestore, sessionSave, sessionSend, sessionTakeInbox, sessionTakeOutput, setTransportUp,
} from "../../../firmware/session/session";
import type { SaPolicy } from "../../../firmware/session/sa";
import { SUITE_CONSTRAINED } from "../../../firmware/suite";
import { FLAG_GPCOMP, FLAG_KEY_PHASE, readHeader, REJECT_AUTH, REJECT_GPCOMP, REJECT_SEQ } from "../../../firmware/record/header";
import { gpcompPack } from "../../../firmware/record/gpcomp";
import { outboundSeal } from "../../../firmware/session/sa";
import { hostCodec } from "../../../host/record/gpcomp";
import { heatshrinkRun } from "../../harness/heatshrink";
import { handshake, memoryStore, policy } from "../../harness/sessions";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Delivers everything a sends to b (in order, or as `shuffle` reorders it); returns the packets. */
function pump(a: Session, b: Session, now = 0, shuffle?: (x: Uint8Array[]) => Uint8Array[]): Uint8Array[] {
  let pkts = sessionTakeOutput(a).map((o) => o.bytes);
  if (shuffle) pkts = shuffle(pkts);
  for (const p of pkts) sessionReceive(b, p, 1, now);
  return pkts;
}

function pair(over: Partial<SaPolicy> = {}, pi: CryptoProvider = hostProvider) {
  const { ei, er } = handshake(pi);
  const dev = sessionNew(policy(pi, over), ei, 0);
  const gw = sessionNew(policy(hostProvider, over), er, 0);
  addTransport(dev, 1, "ble");
  addTransport(gw, 1, "ble");
  return { dev, gw };
}

describe("session", () => {
  it("carries data both ways and confirms the handshake with the first record", () => {
    const { dev, gw } = pair({}, portableProvider((n) => randomBytes(n)));
    assert.ok(!gw.confirmed);
    sessionSend(dev, Buffer.from("t=21.5"), 0);
    pump(dev, gw);
    assert.ok(gw.confirmed);
    assert.deepEqual(sessionTakeInbox(gw).map((b) => Buffer.from(b).toString()), ["t=21.5"]);
    sessionSend(gw, Buffer.from("led on"), 0);
    pump(gw, dev);
    assert.deepEqual(sessionTakeInbox(dev).map((b) => Buffer.from(b).toString()), ["led on"]);
  });

  it("crosses the 2^20 sequence boundary by moving to the next key, without a message", () => {
    const over = { store: memoryStore() };
    const { dev, gw } = pair(over);
    // Start the device's counter just below the end of the compact sequence space.
    dev.out.seq.next = 1048560;
    dev.out.seq.limit = 1048560;
    const got: string[] = [];
    let phases = new Set<number>();
    for (let n = 0; n < 40; n++) {
      sessionSend(dev, Buffer.from(`m${n}`), 0);
      for (const p of pump(dev, gw)) phases.add((readHeader(0, p, 0) as { flags: number }).flags & FLAG_KEY_PHASE);
      got.push(...sessionTakeInbox(gw).map((b) => Buffer.from(b).toString()));
    }
    assert.equal(got.length, 40);
    assert.deepEqual(got, Array.from({ length: 40 }, (_, n) => `m${n}`));
    assert.equal(dev.out.epoch.index, 1);
    assert.equal(gw.inb.rekeys, 1);
    assert.deepEqual([...phases].sort(), [0, FLAG_KEY_PHASE]);
  });

  it("moves to the next key after the configured time and keeps the old key briefly for late records", () => {
    const { dev, gw } = pair({ rekeyAfterMs: 1000, lateKeyMs: 500 });
    sessionSend(dev, Buffer.from("early"), 0);
    const late = sessionTakeOutput(dev)[0].bytes;
    sessionSend(dev, Buffer.from("after rekey"), 1500);
    pump(dev, gw, 1500);
    assert.equal(dev.out.epoch.index, 1);
    assert.equal(sessionReceive(gw, late, 1, 1600), RX_DATA, "a late record under the previous key opens");
    sessionSend(dev, Buffer.from("x"), 1600);
    const old = Buffer.from(late);
    // The previous key is gone after lateKeyMs.
    assert.ok(sessionReceive(gw, old, 1, 5000) < 0);
  });

  it("rejects replayed records and accepts reordered ones once", () => {
    const { dev, gw } = pair();
    for (let n = 0; n < 10; n++) sessionSend(dev, Buffer.from([n]), 0);
    const pkts = pump(dev, gw, 0, (x) => x.reverse());
    assert.equal(sessionTakeInbox(gw).length, 10);
    for (const p of pkts) assert.equal(sessionReceive(gw, p, 1, 0), -REJECT_SEQ);
    assert.equal(gw.inb.replays, 10);
  });

  it("keeps going on a second transport when the first one dies", () => {
    const { dev, gw } = pair();
    addTransport(dev, 2, "lora");
    assert.deepEqual(queryTransports(dev).map((t) => t.name), ["ble", "lora"]);
    sessionSend(dev, Buffer.from("via ble"), 0);
    assert.equal(sessionTakeOutput(dev)[0].transport, 1);
    setTransportUp(dev, 1, false);
    sessionSend(dev, Buffer.from("via lora"), 0);
    const o = sessionTakeOutput(dev);
    assert.equal(o[0].transport, 2);
    assert.equal(sessionReceive(gw, o[0].bytes, 2, 0), RX_DATA);
    deleteTransport(dev, 2);
    setTransportUp(dev, 1, true);
    sessionSend(dev, Buffer.from("back on ble"), 0);
    assert.equal(sessionTakeOutput(dev)[0].transport, 1);
    deleteTransport(dev, 1);
    assert.equal(sessionSend(dev, Buffer.from("nowhere"), 0), false);
    assert.equal(dev.unsent, 1);
  });

  it("retires a key at the forgery limit and moves on when asked", () => {
    const { dev, gw } = pair();
    sessionSend(dev, Buffer.from("ok"), 0);
    const good = sessionTakeOutput(dev)[0].bytes;
    const limit = SUITE_CONSTRAINED.integrityLimit;
    for (let n = 0; n < limit; n++) {
      const forged = Uint8Array.from(good);
      forged[forged.length - 1 - (n % 8)] ^= 1 + (n >> 3);
      forged[7] = (forged[7] + 1 + n) & 0xff; // a fresh sequence number, so the window lets it through
      assert.ok(sessionReceive(gw, forged, 1, 0) < 0);
    }
    assert.equal(gw.inb.authFailures, limit);
    assert.ok(gw.inb.wantRekey);
    assert.equal(sessionReceive(gw, good, 1, 0), -REJECT_AUTH, "the retired key opens nothing more");
    // The gateway asked the device (in an authenticated control record) to move on.
    pump(gw, dev);
    assert.equal(dev.out.epoch.index, 1);
    sessionSend(dev, Buffer.from("new key"), 0);
    pump(dev, gw);
    assert.deepEqual(sessionTakeInbox(gw).map((b) => Buffer.from(b).toString()), ["new key"]);
    assert.ok(!gw.inb.wantRekey);
  });

  /** Forged records (fresh sequence numbers, bad tags) under the gateway's current key until it is retired. */
  function retire(dev: Session, gw: Session, now: number): Uint8Array {
    sessionSend(dev, Buffer.from("ok"), now);
    const good = sessionTakeOutput(dev)[0].bytes;
    for (let n = 0; n < SUITE_CONSTRAINED.integrityLimit; n++) sessionReceive(gw, forgedLike(good, n), 1, now);
    assert.ok(gw.inb.wantRekey);
    return good;
  }

  /** A record like `good` with a fresh sequence number (so the window lets it through) and a bad tag. */
  function forgedLike(good: Uint8Array, n: number): Uint8Array {
    const forged = Uint8Array.from(good);
    forged[forged.length - 1 - (n % 8)] ^= 1 + (n >> 3);
    forged[5] = (forged[5] & 0xf0) | ((n >> 8) & 0x0f);
    forged[6] = n & 0xff;
    forged[7] = 0x80;
    return forged;
  }

  it("asks again for a key update lost on the way, in answer to the peer's next record under the retired key", () => {
    const { dev, gw } = pair();
    retire(dev, gw, 0);
    assert.equal(sessionTakeOutput(gw).length, 1, "the first KEY_UPDATE request");
    // ... lost. The device carries on under the retired key; the gateway asks again and the device moves on.
    sessionSend(dev, Buffer.from("reading"), 10_000);
    assert.equal(pump(dev, gw, 10_000).length, 1);
    assert.equal(sessionTakeInbox(gw).length, 0, "the retired key opens nothing");
    const again = pump(gw, dev, 10_000);
    assert.equal(again.length, 1, "a second KEY_UPDATE request");
    assert.equal(dev.out.epoch.index, 1);
    sessionSend(dev, Buffer.from("reading, sent again"), 10_001);
    pump(dev, gw, 10_001);
    assert.deepEqual(sessionTakeInbox(gw).map((b) => Buffer.from(b).toString()), ["reading, sent again"]);
    assert.ok(!gw.inb.wantRekey);
    assert.equal(gw.inb.cur.epoch.index, 1);
  });

  it("moves the sender once however many copies of a KEY_UPDATE request arrive, and never past what the peer can open", () => {
    const { dev, gw } = pair();
    retire(dev, gw, 0);
    const requests = sessionTakeOutput(gw).map((o) => o.bytes);
    for (const t of [6_000, 12_000, 18_000]) {
      sessionSend(dev, Buffer.from("old key"), t);
      pump(dev, gw, t);
      requests.push(...sessionTakeOutput(gw).map((o) => o.bytes));
    }
    assert.equal(requests.length, 4);
    for (const r of requests) sessionReceive(dev, r, 1, 20_000);
    assert.equal(dev.out.epoch.index, 1, "four requests for key 1, one step");
    sessionSend(dev, Buffer.from("key 1"), 20_000);
    pump(dev, gw, 20_000);
    assert.deepEqual(sessionTakeInbox(gw).map((b) => Buffer.from(b).toString()), ["key 1"]);
    // The gateway moved to key 1 and left key 0: a request for key 1 arriving now (late) moves nothing either.
    const late = retire(dev, gw, 30_000);
    assert.ok(late);
    const forKey2 = sessionTakeOutput(gw).map((o) => o.bytes);
    assert.equal(forKey2.length, 1);
    sessionReceive(dev, forKey2[0], 1, 30_000);
    assert.equal(dev.out.epoch.index, 2, "a request for the next key moves it once more");
  });

  it("sends at most one KEY_UPDATE request per interval, and only in answer to records under the retired key", () => {
    const { dev, gw } = pair();
    const good = retire(dev, gw, 0);
    assert.equal(sessionTakeOutput(gw).length, 1);
    // 2,000 forged records under the retired key over 12 s: a request at 5 s and at 10 s, no more.
    let sent = 0;
    for (let n = 0; n < 2000; n++) {
      sessionReceive(gw, forgedLike(good, 2000 + n), 1, n * 6);
      sent += sessionTakeOutput(gw).length;
    }
    assert.equal(sent, 2, "one per KEY_UPDATE_EVERY_MS");
    // Forged records with the other KEY_PHASE (the tentative next key fails) are not answered at all.
    for (let n = 0; n < 100; n++) {
      const other = forgedLike(good, 4000 + n);
      other[3] ^= FLAG_KEY_PHASE;
      sessionReceive(gw, other, 1, 20_000 + n * 6_000);
      sent += sessionTakeOutput(gw).length;
    }
    assert.equal(sent, 2);
  });

  it("closes on SVC's error packet and on a clean close", () => {
    const a = pair();
    sessionAbort(a.dev);
    const out = sessionTakeOutput(a.dev);
    assert.equal(hex(out[0].bytes), "00".repeat(16));
    assert.equal(sessionReceive(a.gw, out[0].bytes, 1, 0), RX_CLOSED);
    assert.equal(sessionSend(a.gw, Buffer.from("x"), 0), false);
    const b = pair();
    sessionClose(b.gw, 0);
    pump(b.gw, b.dev);
    assert.equal(b.dev.state, 2);
  });

  it("never reuses a (key, nonce) pair across many restarts of the sender", () => {
    const store = memoryStore();
    const { ei, er } = handshake();
    const pol = policy(hostProvider, { store, seqBlock: 16 });
    let dev = sessionNew(pol, ei, 0);
    const gw = sessionNew(policy(hostProvider), er, 0);
    addTransport(dev, 1, "ble");
    const used = new Set<string>();
    let delivered = 0;
    const sendOne = (n: number) => {
      sessionSend(dev, Buffer.from([n & 0xff]), 0);
      const rec = sessionTakeOutput(dev)[0].bytes;
      const h = readHeader(0, rec, 0) as { seq: number };
      const pairId = `${hex(dev.out.epoch.key)}:${h.seq}`;
      assert.ok(!used.has(pairId), `(key, nonce) ${pairId} reused`);
      used.add(pairId);
      const rx = sessionReceive(gw, rec, 1, 0);
      if (rx === RX_DATA) delivered++;
      else if (process.env.DEBUG_RX) console.log("rx", rx, h.seq, dev.out.epoch.index, gw.inb.cur.epoch.index);
    };
    let saved = sessionSave(dev);
    for (let restart = 0; restart < 300; restart++) {
      const burst = 1 + Math.floor(Math.random() * 40);
      for (let n = 0; n < burst; n++) sendOne(n);
      if (restart % 50 === 49) {
        // Now and then the key moves on (as after the rekey interval); the board saves its session then.
        dev.out.startedAt = -pol.rekeyAfterMs;
        sendOne(0);
        saved = sessionSave(dev);
      }
      // Power loss: RAM is gone; storage (the reservations) and the saved session survive.
      dev = sessionRestore(pol, saved, 0)!;
      addTransport(dev, 1, "ble");
    }
    assert.ok(used.size > 3000);
    assert.equal(delivered, used.size, "the receiver accepts every resumed number");
    assert.ok(store.writes < used.size / 4, `storage writes ${store.writes} for ${used.size} records`);
  });
  it("a restored receiver replays nothing: it refuses its saved key and asks the sender to move on", () => {
    const { dev, gw } = pair();
    sessionSend(dev, Buffer.from("before"), 0);
    const old = pump(dev, gw)[0];
    assert.deepEqual(sessionTakeInbox(gw).map((b) => Buffer.from(b).toString()), ["before"]);
    // The gateway loses power and restores its session: its replay window is gone.
    const restored = sessionRestore(gw.inb.policy, sessionSave(gw), 0)!;
    addTransport(restored, 1, "ble");
    assert.ok(sessionReceive(restored, old, 1, 0) < 0, "the old record is not accepted again");
    // That refusal asked the device to move to its next key; under it, traffic flows again.
    pump(restored, dev);
    assert.equal(dev.out.epoch.index, 1);
    sessionSend(dev, Buffer.from("after"), 0);
    pump(dev, restored);
    assert.deepEqual(sessionTakeInbox(restored).map((b) => Buffer.from(b).toString()), ["after"]);
  });
});

describe("session: GPComp (FLAGS bit 7)", () => {
  const text = Buffer.from("t=21.5;h=40%;p=1013;".repeat(6));

  it("a sender compresses what shrinks and sets the bit; the receiver hands over the payload as it was sent", () => {
    const { dev, gw } = pair({ codec: hostCodec, compress: true });
    sessionSend(dev, text, 0);
    sessionSend(dev, Buffer.from("010000420866002a", "hex"), 0); // an 8-byte reading: goes as it is
    const pkts = pump(dev, gw);
    assert.deepEqual(pkts.map((p) => ((readHeader(0, p, 0) as { flags: number }).flags & FLAG_GPCOMP) !== 0), [true, false]);
    assert.ok(pkts[0].length < text.length, `record ${pkts[0].length} bytes for a ${text.length}-byte payload`);
    assert.deepEqual(sessionTakeInbox(gw).map((b) => Buffer.from(b).toString("hex")), [text.toString("hex"), "010000420866002a"]);
    assert.equal(dev.compressed, 1);
    assert.equal(dev.saved, text.length - (pkts[0].length - 16));
  });

  it("never compresses without a codec, or where the policy says not to", () => {
    for (const over of [{ codec: undefined, compress: true }, { codec: hostCodec, compress: false }]) {
      const { dev, gw } = pair(over);
      sessionSend(dev, text, 0);
      const [p] = pump(dev, gw);
      assert.equal((readHeader(0, p, 0) as { flags: number }).flags & FLAG_GPCOMP, 0);
      assert.equal(p.length, text.length + 16);
    }
  });

  it("a receiver without a codec (a Lua board) refuses records with the bit, and counts them", () => {
    const { dev, gw } = pair({ codec: undefined, compress: false });
    const rec = outboundSeal(dev.out, gpcompPack(hostCodec, text)!, FLAG_GPCOMP, 0) as Uint8Array;
    assert.equal(sessionReceive(gw, rec, 1, 0), -REJECT_GPCOMP);
    assert.equal(gw.rejected, 1);
    assert.deepEqual(sessionTakeInbox(gw), []);
  });

  it("refuses a compression bomb after the tag verified, counts it, and goes on", () => {
    const { dev, gw } = pair({ codec: hostCodec, compress: true });
    const payload = heatshrinkRun(4096); // 122 bytes
    assert.equal(hostCodec.decompress(payload)!.byteLength, 4096);
    const rec = outboundSeal(dev.out, payload, FLAG_GPCOMP, 0) as Uint8Array;
    assert.equal(sessionReceive(gw, rec, 1, 0), -REJECT_GPCOMP);
    assert.equal(gw.rejected, 1);
    assert.deepEqual(sessionTakeInbox(gw), []);
    sessionSend(dev, text, 0);
    pump(dev, gw);
    assert.deepEqual(sessionTakeInbox(gw).map((b) => Buffer.from(b).toString()), [text.toString()]);
  });
});
