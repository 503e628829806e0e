import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { FLAG_BATCH, FLAG_KEY_PHASE, REJECT_AUTH, REJECT_SEQ, REJECT_SPI } from "../../../firmware/record/header";
import { outboundRekey } from "../../../firmware/session/sa";
import { RX_DATA, Session, sessionNew, sessionReceive, sessionSend, sessionTakeInbox, sessionTakeOutput, addTransport } from "../../../firmware/session/session";
import { SUITE_BACKBONE } from "../../../firmware/suite";
import { BACKBONE_HEADER, BACKBONE_TAG, backbonePolicy, openRecord, RecordOpener, sealChunks } from "../../../host/backbone/records";
import { handshake } from "../../harness/sessions";

const MAX = 1 << 24;

function pair(): { gw: Session; ctl: Session } {
  const { ei, er } = handshake();
  const gw = sessionNew(backbonePolicy(), ei, Date.now());
  const ctl = sessionNew(backbonePolicy(), er, Date.now());
  for (const s of [gw, ctl]) addTransport(s, 1, "tcp");
  return { gw, ctl };
}

const seal = (s: Session, payload: Uint8Array, flags = FLAG_BATCH) => Buffer.concat(sealChunks(s, [payload], flags, Date.now(), MAX)!);

describe("backbone records (node:crypto on the session's own state)", () => {
  it("are extreme-format AES-256-GCM records the portable path opens, and the other way round", () => {
    const { gw, ctl } = pair();
    assert.equal(gw.out.policy.suite, SUITE_BACKBONE);
    for (const n of [0, 1, 20, 16383, 16384, 16385, 100_000]) {
      const data = randomBytes(n);
      const rec = seal(gw, data);
      assert.equal(rec.length, BACKBONE_HEADER + n + BACKBONE_TAG);
      assert.equal(rec.readUInt32BE(0), ctl.inb.spi, "4-byte SPI");
      assert.equal(rec.readUInt32BE(5), n, "32-bit length");
      assert.equal(sessionReceive(ctl, rec, 1, Date.now()), RX_DATA, `portable open of ${n} bytes`);
      assert.deepEqual(Buffer.from(sessionTakeInbox(ctl)[0]), data);
      // ... and back: portable seal, host open.
      assert.ok(sessionSend(ctl, data, Date.now()));
      const back = Buffer.from(sessionTakeOutput(ctl)[0].bytes);
      const opened = openRecord(gw, back);
      assert.ok(typeof opened !== "number", `host open of ${n} bytes`);
      assert.deepEqual(opened.payload, data);
    }
  });

  it("a payload sealed from many chunks is the record of their concatenation", () => {
    const { gw, ctl } = pair();
    const parts = [randomBytes(3), randomBytes(40_000), new Uint8Array(0), randomBytes(17)];
    const opened = openRecord(ctl, seal(gw, Buffer.concat(parts)));
    const rec2 = Buffer.concat(sealChunks(gw, parts, FLAG_BATCH, Date.now(), MAX)!);
    const opened2 = openRecord(ctl, rec2);
    assert.ok(typeof opened !== "number" && typeof opened2 !== "number");
    assert.deepEqual(opened2.payload, Buffer.concat(parts));
    assert.equal(opened2.flags, FLAG_BATCH);
    assert.equal(sealChunks(gw, [new Uint8Array(11)], 0, Date.now(), 10), undefined, "longer than maxPayload");
  });

  it("opens a record fed in arbitrary pieces exactly as whole", () => {
    const { gw, ctl } = pair();
    const data = randomBytes(70_000);
    const rec = seal(gw, data);
    const o = RecordOpener.begin(ctl, rec.subarray(0, BACKBONE_HEADER));
    assert.ok(typeof o !== "number");
    for (let off = BACKBONE_HEADER, step = 1; off < rec.length - BACKBONE_TAG; off += step, step = step * 3 + 1) {
      o.update(rec.subarray(off, Math.min(off + step, rec.length - BACKBONE_TAG)));
    }
    const parts = o.finish(rec.subarray(rec.length - BACKBONE_TAG));
    assert.ok(typeof parts !== "number");
    assert.deepEqual(Buffer.concat(parts), data);
  });

  it("follows the sender to its next keys (KEY_PHASE), on both paths", () => {
    const { gw, ctl } = pair();
    for (let k = 1; k <= 3; k++) {
      outboundRekey(gw.out, Date.now());
      const rec = seal(gw, Buffer.from(`epoch ${k}`));
      assert.equal((rec[4] & FLAG_KEY_PHASE) !== 0, k % 2 === 1);
      const opened = openRecord(ctl, rec);
      assert.ok(typeof opened !== "number", `epoch ${k}`);
      assert.equal(ctl.inb.cur.epoch.index, k);
      assert.equal(ctl.inb.prev, undefined, "no late key kept on a stream");
    }
    assert.equal(ctl.inb.rekeys, 3);
    // The volume limit moves the sender on by itself, and the portable receiver follows too.
    gw.out.sealed = SUITE_BACKBONE.confidentialityLimit;
    const rec = seal(gw, Buffer.from("after the limit"));
    assert.equal(gw.out.epoch.index, 4);
    const ctl2 = ctl; // same receiver state, portable path this time
    assert.equal(sessionReceive(ctl2, rec, 1, Date.now()), RX_DATA);
  });

  it("rejects tampering, replays and strangers without moving anything", () => {
    const { gw, ctl } = pair();
    const good = seal(gw, Buffer.from("one"));
    for (let i = 0; i < good.length; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 0x01;
      const r = openRecord(ctl, bad);
      assert.equal(typeof r, "number", `byte ${i} flipped`);
    }
    // A flipped KEY_PHASE bit makes the receiver try a next key it derives and then forgets.
    const flipped = Buffer.from(good);
    flipped[4] ^= FLAG_KEY_PHASE;
    assert.equal(openRecord(ctl, flipped), REJECT_AUTH);
    assert.equal(ctl.inb.cur.epoch.index, 0);
    assert.ok(typeof openRecord(ctl, good) !== "number", "the genuine record still opens");
    assert.equal(openRecord(ctl, good), REJECT_SEQ, "a replay");
    const other = pair(); // the harness handshake allocates the same SPIs every time: only the keys differ
    seal(other.gw, Buffer.from("x"));
    assert.equal(openRecord(ctl, seal(other.gw, Buffer.from("x"))), REJECT_AUTH, "its sequence number 1 is fresh here");
    const stranger = Buffer.from(good);
    stranger.writeUInt32BE(ctl.inb.spi + 1, 0);
    assert.equal(openRecord(ctl, stranger), REJECT_SPI);
    assert.ok(ctl.inb.authFailures >= 1 && ctl.inb.replays === 1);
  });
});
