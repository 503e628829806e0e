import assert from "node:assert/strict";
import { DurableAcks } from "../../../host/backbone/durable";

describe("backbone/durable: cumulative acknowledgements over messages made durable out of order", () => {
  it("moves only past messages that are all done, whatever order they finish in", () => {
    const a = new DurableAcks("run");
    for (let s = 5; s < 10; s++) a.begin(s);
    assert.equal(a.finish(7), undefined, "5 and 6 are still outstanding");
    assert.equal(a.finish(6), undefined);
    assert.equal(a.finish(5), 8, "5, 6, 7 done: every message below 8 is taken");
    assert.equal(a.outstanding, 2);
    assert.equal(a.finish(9), undefined);
    assert.equal(a.finish(8), 10, "nothing outstanding: up to one past the highest begun");
    assert.equal(a.outstanding, 0);
  });

  it("ignores numbers it never began (and does not keep them)", () => {
    const a = new DurableAcks("run");
    assert.equal(a.finish(0), undefined);
    a.begin(3);
    assert.equal(a.finish(2), undefined);
    assert.equal(a.finish(4), undefined);
    assert.equal(a.finish(3), 4);
  });

  it("stays correct over many messages (its storage is compacted as it goes)", () => {
    const a = new DurableAcks("run");
    let acked = 0;
    for (let s = 0; s < 10_000; s += 2) {
      a.begin(s);
      a.begin(s + 1);
      assert.equal(a.finish(s + 1), undefined);
      acked = a.finish(s) ?? acked;
      assert.equal(acked, s + 2);
    }
    assert.equal(a.outstanding, 0);
  });
});
