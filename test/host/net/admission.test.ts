import assert from "node:assert/strict";
import { Admission, sourceOf, type Ticket } from "../../../host/net/admission";
import { until } from "../../harness/until";

/** Admits from `address`, recording what was dropped and why. */
function admitter(a: Admission) {
  const dropped: string[] = [];
  let n = 0;
  const admit = (address: string): [Ticket | undefined, string] => {
    const name = `${address}#${n++}`;
    return [a.admit(address, (why) => dropped.push(`${name} ${why}`)), name];
  };
  return { admit, dropped };
}

describe("admission of connections not yet authenticated", () => {
  const limits = { maxPending: 4, perSource: 2, silentMs: 60_000, knownSources: 2 };

  it("past the per-source bound, evicts the oldest silent connection of that source, not of another", () => {
    const a = new Admission(limits);
    const { admit, dropped } = admitter(a);
    admit("10.0.0.9");
    admit("10.0.0.1");
    admit("10.0.0.1");
    admit("10.0.0.1");
    assert.deepEqual(dropped, ["10.0.0.1#1 evicted"]);
    assert.deepEqual([a.size, a.stats.evicted, a.stats.refused], [3, 1, 0]);
  });

  it("a connection whose first message was accepted is not evicted; with only such ones left, the newcomer is refused", () => {
    const a = new Admission(limits);
    const { admit, dropped } = admitter(a);
    for (const [t] of [admit("10.0.0.1"), admit("10.0.0.1")]) a.spoke(t!);
    assert.equal(admit("10.0.0.1")[0], undefined);
    assert.deepEqual(dropped, []);
    assert.equal(a.stats.refused, 1);
  });

  it("past the total bound, evicts strangers first, and keeps room for a source a peer authenticated from", () => {
    const a = new Admission(limits);
    const { admit, dropped } = admitter(a);
    const [gw] = admit("10.0.0.1");
    a.settle(gw!, true); // a gateway authenticated from 10.0.0.1
    const [old] = admit("10.0.0.1"); // known: the flood below never displaces it
    for (const s of ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]) admit(s);
    assert.deepEqual(dropped, ["10.0.0.2#2 evicted", "10.0.0.3#3 evicted"]);
    assert.ok(a.size === 4 && !dropped.some((d) => d.startsWith("10.0.0.1")));
    // A known newcomer takes a stranger's place; a stranger never takes a known one's.
    admit("10.0.0.1");
    assert.equal(dropped.at(-1), "10.0.0.4#4 evicted");
    for (const t of [old]) a.spoke(t!);
    admit("10.0.0.7");
    admit("10.0.0.8");
    assert.ok(!dropped.some((d) => d.startsWith("10.0.0.1")), dropped.join(", "));
  });

  it("remembers a bounded number of sources, the least recently authenticated forgotten first", () => {
    const a = new Admission({ ...limits, maxPending: 64 });
    const { admit } = admitter(a);
    for (const s of ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) a.settle(admit(s)[0]!, true);
    assert.deepEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"].map((s) => admit(s)[0]!.known), [false, true, true]);
  });

  it("drops a connection that has said nothing acceptable in time, and counts it", async () => {
    const a = new Admission({ ...limits, silentMs: 50 });
    const { admit, dropped } = admitter(a);
    admit("10.0.0.1");
    a.spoke(admit("10.0.0.2")[0]!);
    await until(() => dropped.length === 1, "the silent one dropped");
    assert.deepEqual([dropped, a.stats.silent, a.size], [["10.0.0.1#0 silent"], 1, 1]);
  });

  it("counts an IPv4 address, mapped or not, as one source, and an IPv6 /64 as one", () => {
    assert.equal(sourceOf("192.0.2.7"), "192.0.2.7");
    assert.equal(sourceOf("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(sourceOf("2001:db8:0:1::5"), "2001:db8:0:1::/64");
    assert.equal(sourceOf("2001:0db8:0000:0001:ffff::1%eth0"), "2001:db8:0:1::/64");
    assert.equal(sourceOf("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(sourceOf("::1"), "0:0:0:0::/64");
    assert.equal(sourceOf(undefined), "unknown");
  });
});
