import assert from "node:assert/strict";
import { MapSweep } from "../../../host/gateway/sweep";
import { collectGarbage } from "../../harness/gc";

describe("gateway/sweep: a Map visited a slice at a time", () => {
  const keys = (sweep: MapSweep<number, string>, n: number) => {
    const seen: number[] = [];
    sweep.next(n, (k) => seen.push(k));
    return seen;
  };

  it("goes on where it stopped, starts over at the end, and never visits more than the map holds", () => {
    const m = new Map([1, 2, 3, 4, 5].map((k) => [k, String(k)]));
    const sweep = new MapSweep(m);
    assert.deepEqual(keys(sweep, 2), [1, 2]);
    assert.deepEqual(keys(sweep, 2), [3, 4]);
    assert.deepEqual(keys(sweep, 2), [5, 1]);
    assert.deepEqual(keys(sweep, 99), [2, 3, 4, 5, 1]);
    assert.deepEqual(keys(new MapSweep(new Map()), 3), []);
  });

  it("sees entries added since (after those visited), and lets the visitor delete the entry it is given", () => {
    const m = new Map([1, 2, 3].map((k) => [k, String(k)]));
    const sweep = new MapSweep(m);
    assert.deepEqual(keys(sweep, 1), [1]);
    m.set(4, "4");
    m.delete(2);
    sweep.next(2, (k) => m.delete(k)); // 3, then 1 (visited before 4 was added); 2 is gone
    assert.deepEqual([...m.keys()], [4]);
    assert.deepEqual(keys(sweep, 2), [4]);
  });

  it("keeps nothing the map let go of alive, however much it churned between calls", async () => {
    // A flood of one-shot sources: each added, then evicted a while later, with no poll in between.
    const m = new Map<number, object>();
    const sweep = new MapSweep(m);
    m.set(0, {});
    sweep.next(1, () => {});
    // The objects are made in a function of its own: this one is async, and a suspended async function's
    // frame may hold its loop's last value across every await below (1 of 20,000 stayed alive in two CI
    // runs, however many collections followed).
    const churn = () => {
      const made: WeakRef<object>[] = [];
      for (let i = 1; i <= 20_000; i++) {
        const v = { i };
        made.push(new WeakRef(v));
        m.set(i, v);
        m.delete(i - 100);
      }
      m.clear();
      return made;
    };
    const refs = churn();
    // WeakRef targets are kept until the job that made them ends: a few rounds, each in a new job. A sweep
    // that held its iterator kept the map's whole old table alive, every round.
    let alive = refs.length;
    for (let round = 0; round < 3 && alive > 0; round++) {
      await new Promise((r) => setImmediate(r));
      collectGarbage();
      alive = refs.filter((r) => r.deref() !== undefined).length;
    }
    assert.equal(alive, 0);
    sweep.next(1, () => {});
  });
});
