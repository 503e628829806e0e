import assert from "node:assert/strict";
import {
  REPLAY_MAX_SEQ,
  replayAccept,
  replayCheck,
  replayNew,
  ReplayWindow,
  strictAccept,
  strictCheck,
  strictNew,
} from "../../../firmware/session/replay";
import { prngInt } from "../../harness/random";

/** What a receiver does: check, (authenticate,) accept. */
function receive(w: ReplayWindow, seq: number): boolean {
  if (!replayCheck(w, seq)) return false;
  replayAccept(w, seq);
  return true;
}

function snapshot(w: ReplayWindow): string {
  return JSON.stringify({ size: w.size, top: w.top, any: w.any, bits: Array.from(w.bits) });
}


/** The trivially correct receiver: everything seen, and the same "at or below top - size" rule. */
function reference(size: number) {
  const seen = new Set<number>();
  let top = -1;
  return {
    check: (seq: number) => !seen.has(seq) && (top < 0 || seq > top - size),
    accept: (seq: number) => {
      seen.add(seq);
      if (seq > top) top = seq;
    },
  };
}

describe("session/replay: sliding window", () => {
  it("accepts a fresh window's first record, whatever its number", () => {
    for (const seq of [0, 1, 63, 64, 1000, 0xfffff, REPLAY_MAX_SEQ]) {
      const w = replayNew(64);
      assert.equal(receive(w, seq), true, `seq ${seq}`);
      assert.equal(w.top, seq);
      assert.equal(replayCheck(w, seq), false, `duplicate ${seq}`);
    }
  });

  it("accepts in-order records and rejects each repeated", () => {
    const w = replayNew(64);
    for (let s = 0; s < 500; s++) {
      assert.equal(receive(w, s), true, `first ${s}`);
      assert.equal(receive(w, s), false, `again ${s}`);
    }
    for (let s = 437; s < 500; s++) assert.equal(replayCheck(w, s), false, `late duplicate ${s}`);
  });

  it("accepts reordering within the window exactly once each", () => {
    const w = replayNew(64);
    assert.ok(receive(w, 100));
    const order = [90, 99, 38, 60, 95, 100, 80, 36, 37];
    for (const s of order) {
      assert.equal(receive(w, s), s > 100 - 64 && s !== 100, `first ${s}`);
      assert.equal(receive(w, s), false, `again ${s}`);
    }
  });

  it("draws the window's edge at top - size + 1", () => {
    for (const size of [32, 64, 128, 1024]) {
      const w = replayNew(size);
      assert.ok(receive(w, 5000));
      assert.equal(replayCheck(w, 5000 - size), false, `size ${size}: top - size is too old`);
      assert.equal(replayCheck(w, 5000 - size + 1), true, `size ${size}: top - size + 1 is inside`);
      assert.ok(receive(w, 5000 - size + 1));
      assert.equal(replayCheck(w, 5000 - size + 1), false);
      assert.equal(replayCheck(w, 0), false);
    }
  });

  it("keeps seen bits across slides that cross word boundaries", () => {
    for (const size of [32, 64, 128, 1024]) {
      const w = replayNew(size);
      const seen: number[] = [];
      let top = 0;
      for (const step of [1, 5, 31, 32, 33, 17, 63, 64, 65, 2, 95, 3]) {
        top += step;
        if (!receive(w, top)) assert.fail(`size ${size}: ${top} refused`);
        seen.push(top);
        for (const s of seen) assert.equal(replayCheck(w, s), false, `size ${size}: ${s} after top ${top}`);
        for (let s = Math.max(0, top - size + 1); s < top; s++)
          if (!seen.includes(s)) assert.equal(replayCheck(w, s), true, `size ${size}: unseen ${s} at top ${top}`);
      }
    }
  });

  it("clears the window on a jump of the window size or more", () => {
    for (const size of [32, 64, 128, 1024]) {
      for (const jump of [size - 1, size, size + 1, 3 * size + 7, 1000000]) {
        const w = replayNew(size);
        for (let s = 0; s < size; s++) assert.ok(receive(w, s));
        const top = size - 1 + jump;
        assert.ok(receive(w, top));
        for (let s = 0; s < size; s++) assert.equal(replayCheck(w, s), false, `old ${s}, size ${size}, jump ${jump}`);
        for (let s = top - size + 1; s < top; s++)
          assert.equal(replayCheck(w, s), s >= size, `size ${size}, jump ${jump}, seq ${s}`);
      }
    }
  });

  it("handles the largest sequence numbers and refuses out-of-range ones", () => {
    const w = replayNew(64);
    assert.ok(receive(w, REPLAY_MAX_SEQ - 10));
    assert.ok(receive(w, REPLAY_MAX_SEQ));
    assert.ok(receive(w, REPLAY_MAX_SEQ - 1));
    assert.equal(replayCheck(w, REPLAY_MAX_SEQ - 10), false);
    assert.equal(replayCheck(w, REPLAY_MAX_SEQ - 11), true);
    for (const bad of [-1, REPLAY_MAX_SEQ + 1, 0x100000000, NaN]) {
      assert.equal(replayCheck(replayNew(64), bad), false, `seq ${bad}`);
      const w2 = replayNew(64);
      replayAccept(w2, bad);
      assert.equal(w2.any, false, `accepting ${bad} changes nothing`);
    }
  });

  it("refuses bad window sizes", () => {
    for (const size of [0, 16, 31, 33, 100, 1056, 2048, -32, 32.5]) assert.throws(() => replayNew(size), /replay: size/);
    for (const size of [32, 64, 96, 160, 992, 1024]) assert.equal(replayNew(size).bits.length, size / 32);
  });

  it("never changes state in replayCheck (forgeries cannot move the window)", () => {
    const next = prngInt(7);
    for (const size of [32, 64, 1024]) {
      const w = replayNew(size);
      for (let i = 0; i < 2000; i++) {
        const before = snapshot(w);
        const forged = next(3000);
        replayCheck(w, forged); // a forged record: checked, then fails authentication
        assert.equal(snapshot(w), before);
        receive(w, next(3000));
      }
    }
  });

  for (const size of [32, 64, 128, 1024]) {
    it(`agrees with a reference model over 20,000 random operations (size ${size})`, () => {
      const next = prngInt(size * 7919 + 1);
      const w = replayNew(size);
      const ref = reference(size);
      let base = 0;
      let accepted = 0;
      let refused = 0;
      for (let op = 0; op < 20000; op++) {
        // Mostly near the front (reordering, duplicates), sometimes behind the edge, sometimes far ahead.
        const r = next(100);
        let seq: number;
        if (r < 70) seq = base + next(size + 8) - size;
        else if (r < 85) seq = base - size - next(3 * size);
        else if (r < 97) seq = base + next(4);
        else seq = base + size + next(5 * size);
        if (seq < 0) seq = next(8);
        const want = ref.check(seq);
        assert.equal(replayCheck(w, seq), want, `op ${op}: check ${seq}`);
        if (want) accepted++;
        else refused++;
        // Some records that pass the check then fail authentication and are never accepted.
        if (want && next(10) !== 0) {
          replayAccept(w, seq);
          ref.accept(seq);
          if (seq > base) base = seq;
        }
      }
      // Both outcomes must be common, or the model check proves little.
      assert.ok(accepted > 2000 && refused > 2000, `accepted ${accepted}, refused ${refused}`);
    });
  }
});

describe("session/replay: strict counter (stream links)", () => {
  it("accepts strictly increasing numbers, gaps included", () => {
    const c = strictNew();
    for (const s of [0, 1, 2, 10, 11, 1000]) {
      assert.equal(strictCheck(c, s), true, `${s}`);
      strictAccept(c, s);
      assert.equal(strictCheck(c, s), false, `again ${s}`);
      assert.equal(c.next, s + 1);
    }
    assert.equal(strictCheck(c, 999), false);
    assert.equal(strictCheck(c, 1001), true);
  });

  it("does not move on check, nor on an accept that went backwards", () => {
    const c = strictNew();
    strictAccept(c, 50);
    assert.equal(strictCheck(c, 80), true);
    assert.equal(c.next, 51);
    strictAccept(c, 20);
    assert.equal(c.next, 51);
  });

  it("refuses out-of-range numbers and stays within 32-bit integers at the top", () => {
    const c = strictNew();
    for (const bad of [-1, REPLAY_MAX_SEQ + 1, NaN]) assert.equal(strictCheck(c, bad), false);
    strictAccept(c, REPLAY_MAX_SEQ);
    assert.equal(c.next, REPLAY_MAX_SEQ + 1);
    assert.ok(c.next <= 0x7fffffff);
    assert.equal(strictCheck(c, REPLAY_MAX_SEQ), false);
  });
});
