import assert from "node:assert/strict";
import { MapSweep } from "../../../host/gateway/sweep";

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

  it("sees entries added since, and lets the visitor delete the entry it is given", () => {
    const m = new Map([1, 2, 3].map((k) => [k, String(k)]));
    const sweep = new MapSweep(m);
    assert.deepEqual(keys(sweep, 1), [1]);
    m.set(4, "4");
    m.delete(2);
    sweep.next(2, (k) => m.delete(k)); // 3, then 4 (added since); 2 is gone
    assert.deepEqual([...m.keys()], [1]);
    assert.deepEqual(keys(sweep, 2), [1]);
  });
});
