import assert from "node:assert/strict";
import {
  formatDecimal,
  parseDecimal,
  SEQ_MAX,
  SeqCounter,
  seqForget,
  seqOpen,
  seqReset,
  SeqStorage,
  seqTake,
} from "../../../firmware/session/seqstore";
import { prngInt } from "../../harness/random";

const COMPACT_MAX = 0xfffff;

const CRASH = "power lost";

/**
 * A Map-backed store: a write is durable once `write` returns. Counts writes; can fail the next write
 * (failNext) or lose power inside the write after `crashAfter` more completed ones (the value is not stored).
 */
function memStore() {
  const map = new Map<string, string>();
  const s = {
    map,
    writes: 0,
    crashes: 0,
    failNext: false,
    crashAfter: -1,
    read: (name: string) => map.get(name),
    write: (name: string, value: string) => {
      if (s.crashAfter === 0) {
        s.crashes++;
        s.crashAfter = -1;
        throw CRASH;
      }
      if (s.crashAfter > 0) s.crashAfter--;
      if (s.failNext) {
        s.failNext = false;
        throw new Error("flash full");
      }
      map.set(name, value);
      s.writes++;
    },
  };
  return s;
}


describe("session/seqstore: decimal strings", () => {
  it("formats and parses round trip", () => {
    for (const n of [0, 1, 9, 10, 99, 100, 1048575, 1048576, 123456789, 0x7ffffffe, 0x7fffffff]) {
      assert.equal(formatDecimal(n), String(n));
      assert.equal(parseDecimal(String(n)), n);
    }
  });

  it("refuses anything that is not a plain decimal below 2^31", () => {
    for (const s of ["", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1e3", "abc", "2147483648", "99999999999", "4294967296"])
      assert.equal(parseDecimal(s), -1, JSON.stringify(s));
    assert.equal(parseDecimal("0000000012"), 12);
  });
});

describe("session/seqstore: counters", () => {
  it("opens fresh at 0 and persists the reservation before returning", () => {
    const st = memStore();
    const c = seqOpen(st, "sq:1:0", 16, COMPACT_MAX);
    assert.deepEqual(c, { name: "sq:1:0", block: 16, next: 0, limit: 16, max: COMPACT_MAX });
    assert.equal(st.map.get("sq:1:0"), "16");
    assert.equal(st.writes, 1);
  });

  it("hands out consecutive numbers and writes once per block", () => {
    const st = memStore();
    const c = seqOpen(st, "a", 10, COMPACT_MAX);
    for (let i = 0; i < 95; i++) {
      assert.equal(seqTake(st, c), i);
      assert.ok(i < Number(st.map.get("a")), `number ${i} is covered by the persisted reservation`);
    }
    assert.equal(st.writes, 10); // open, then 10, 20, ..., 90
    assert.equal(st.map.get("a"), "100");
  });

  it("skips the whole persisted reservation after a restart", () => {
    const st = memStore();
    const c = seqOpen(st, "a", 32, COMPACT_MAX);
    for (let i = 0; i < 5; i++) seqTake(st, c);
    const d = seqOpen(st, "a", 32, COMPACT_MAX); // power loss: c is gone
    assert.equal(seqTake(st, d), 32);
    assert.equal(st.map.get("a"), "64");
  });

  it("survives 1,000 random crashes without repeating a number (random blocks 1..64)", () => {
    const next = prngInt(20240611);
    const st = memStore();
    const used: number[] = [];
    const kinds = [0, 0, 0, 0];
    for (let restart = 0; restart < 1000; restart++) {
      const block = 1 + next(64);
      const kind = next(4);
      kinds[kind]++;
      // kind 3: power fails inside a storage write, before it became durable (the write is lost).
      if (kind === 3) st.crashAfter = next(4);
      try {
        let c: SeqCounter | undefined = seqOpen(st, "sq:7:0", block, COMPACT_MAX);
        // kind 0: killed right after open. kind 1: killed after using whole blocks, just before the
        // next reservation. kind 2: killed after the next reservation was written but before its first
        // number was sent. kind 3: killed anywhere, possibly mid-write.
        const n = kind === 0 ? 0 : kind === 1 ? c.limit - c.next + block * next(3) : next(3 * block + 1);
        for (let i = 0; i < n; i++) {
          const s = seqTake(st, c);
          assert.ok(s >= 0);
          assert.ok(s < Number(st.map.get("sq:7:0")), "every number is inside the persisted reservation");
          used.push(s); // sent
        }
        if (kind === 1) assert.equal(c.next, c.limit);
        if (kind === 2) {
          while (c.next !== c.limit) used.push(seqTake(st, c));
          const before = st.writes;
          seqTake(st, c); // reserves a block and returns a number that is never sent
          assert.equal(st.writes, before + 1);
        }
        c = undefined; // crash: the in-memory counter is lost, storage keeps what was written
      } catch (e) {
        if (e !== CRASH) throw e;
      }
      st.crashAfter = -1;
    }
    for (let i = 1; i < used.length; i++) assert.ok(used[i] > used[i - 1], `increasing at ${i}: ${used[i - 1]} then ${used[i]}`);
    assert.equal(new Set(used).size, used.length);
    assert.ok(used.length > 10000, `used ${used.length}`);
    assert.ok(kinds.every((k) => k > 150), `kill points ${kinds}`);
    assert.ok(st.crashes > 50, `mid-write crashes ${st.crashes}`);
  });

  it("costs about one write per block", () => {
    for (const block of [1, 8, 64, 1000]) {
      const st = memStore();
      const c = seqOpen(st, "a", block, COMPACT_MAX);
      const used = 5000;
      for (let i = 0; i < used; i++) seqTake(st, c);
      assert.equal(st.writes, 1 + Math.floor((used - 1) / block), `block ${block}`);
    }
  });

  it("returns -1 at exhaustion, keeps returning it, and never wraps", () => {
    const st = memStore();
    const c = seqOpen(st, "a", 7, 20);
    for (let i = 0; i <= 20; i++) assert.equal(seqTake(st, c), i);
    const writes = st.writes;
    for (let i = 0; i < 5; i++) assert.equal(seqTake(st, c), -1);
    assert.equal(st.writes, writes, "nothing more is written once exhausted");
    assert.equal(st.map.get("a"), "21", "the last reservation is capped at max + 1");
    const d = seqOpen(st, "a", 7, 20);
    assert.equal(seqTake(st, d), -1, "still exhausted after a restart");
    assert.equal(st.writes, writes);
  });

  it("stops at the compact format's last number", () => {
    const st = memStore();
    st.map.set("a", String(COMPACT_MAX - 2));
    const c = seqOpen(st, "a", 64, COMPACT_MAX);
    assert.equal(c.limit, COMPACT_MAX + 1);
    assert.deepEqual([seqTake(st, c), seqTake(st, c), seqTake(st, c), seqTake(st, c)], [COMPACT_MAX - 2, COMPACT_MAX - 1, COMPACT_MAX, -1]);
  });

  it("reserves up to SEQ_MAX + 1 without passing 2^31 - 1", () => {
    const st = memStore();
    st.map.set("a", String(SEQ_MAX - 1));
    const c = seqOpen(st, "a", SEQ_MAX, SEQ_MAX);
    assert.equal(st.map.get("a"), "2147483647");
    assert.deepEqual([seqTake(st, c), seqTake(st, c), seqTake(st, c)], [SEQ_MAX - 1, SEQ_MAX, -1]);
  });

  it("treats a damaged entry as exhausted, never as fresh", () => {
    for (const bad of ["garbage", "-5", "12x", "99999999999", String(COMPACT_MAX + 2)]) {
      const st = memStore();
      st.map.set("a", bad);
      const c = seqOpen(st, "a", 16, COMPACT_MAX);
      assert.equal(seqTake(st, c), -1, JSON.stringify(bad));
      assert.equal(st.writes, 0);
    }
  });

  it("returns no number whose reservation failed to write", () => {
    const st = memStore();
    const c = seqOpen(st, "a", 2, COMPACT_MAX);
    assert.equal(seqTake(st, c), 0);
    assert.equal(seqTake(st, c), 1);
    st.failNext = true;
    assert.throws(() => seqTake(st, c), /flash full/);
    assert.equal(c.next, 2);
    assert.equal(seqTake(st, c), 2);
    assert.equal(st.map.get("a"), "4");
  });

  it("resets to 0 under a new key's name, and resumes that name after a restart", () => {
    const st = memStore();
    const c = seqOpen(st, "sq:9:0", 8, COMPACT_MAX);
    for (let i = 0; i < 12; i++) seqTake(st, c);
    seqReset(st, c, "sq:9:1");
    assert.equal(c.name, "sq:9:1");
    assert.equal(st.map.get("sq:9:1"), "8");
    assert.equal(seqTake(st, c), 0);
    assert.equal(seqTake(st, c), 1);
    assert.equal(st.map.get("sq:9:0"), "16", "the old key's entry is left alone");
    const d = seqOpen(st, "sq:9:1", 8, COMPACT_MAX);
    assert.equal(seqTake(st, d), 8);
  });

  it("forgets by writing \"\", which reads as fresh, and writes nothing when there is nothing to forget", () => {
    const st = memStore();
    const c = seqOpen(st, "a", 8, COMPACT_MAX);
    seqTake(st, c);
    const w = st.writes;
    seqForget(st, "a");
    assert.equal(st.map.get("a"), "");
    assert.equal(st.writes, w + 1);
    seqForget(st, "a");
    seqForget(st, "never");
    assert.equal(st.writes, w + 1);
    assert.equal(st.map.has("never"), false);
    assert.equal(seqTake(st, seqOpen(st, "a", 8, COMPACT_MAX)), 0);
  });

  it("works over a store that erases on write(name, \"\") (Espruino Storage style)", () => {
    const map = new Map<string, string>();
    const st: SeqStorage = {
      read: (n) => map.get(n),
      write: (n, v) => (v === "" ? map.delete(n) : map.set(n, v), undefined),
    };
    const c = seqOpen(st, "a", 4, COMPACT_MAX);
    seqTake(st, c);
    seqForget(st, "a");
    assert.equal(map.has("a"), false);
    assert.equal(seqOpen(st, "a", 4, COMPACT_MAX).next, 0);
  });

  it("refuses bad block sizes and limits", () => {
    const st = memStore();
    for (const [block, max] of [[0, 100], [-1, 100], [1.5, 100], [1, -1], [1, SEQ_MAX + 1], [SEQ_MAX + 1, 100], [NaN, 100], [1, 0.5]])
      assert.throws(() => seqOpen(st, "a", block, max), /seqstore:/, `block ${block}, max ${max}`);
    assert.equal(st.writes, 0);
  });
});
