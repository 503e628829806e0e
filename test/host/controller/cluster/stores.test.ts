// What several controllers share through the database (host/controller/cluster/), on both backends: two
// controllers are two owners ("a", "b") on one database, as two processes on one Postgres would be.
import assert from "node:assert/strict";
import { CommandBook, MAX_UNCLOSED } from "../../../../host/controller/cluster/commands";
import { CommandDispatch } from "../../../../host/controller/cluster/dispatch";
import { Outbox, type Reading } from "../../../../host/controller/cluster/outbox";
import { Readings } from "../../../../host/controller/cluster/readings";
import { GatewayLeases, RouteBook } from "../../../../host/controller/cluster/routes";
import type { Db } from "../../../../host/controller/db/db";
import { silentLogger } from "../../../../host/telemetry/log";
import { until } from "../../../harness/until";
import { BACKENDS, freshDb, stopSharedPostgres } from "../backends";

after(stopSharedPostgres);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const D1 = "d1d1d1d1", D2 = "d2d2d2d2", D3 = "d3d3d3d3";
const reading = (device: string, id: number, body = `r${id}`): Reading => ({ device, id, gateway: "0a0b0c0d", mode: "terminate", body: Buffer.from(body), receivedMs: 1_700_000_000_000 + id });

/** dh device rows (no master key needed), for the commands' foreign key. */
async function devices(db: Db, ...ids: string[]): Promise<void> {
  for (const [i, id] of ids.entries()) {
    await db.query("INSERT INTO devices (id, board, mode, kid, public_key) VALUES ($1, 'esp32-espruino', 'dh', $2, $3)", [id, `0000000${i}`, new Uint8Array(32).fill(i + 1)]);
  }
}

describe("cluster stores: readings, commands, routes and leases in the database", function () {
  this.timeout(120_000);
  for (const b of BACKENDS) {
    describe(b.name, () => {
      // One database per backend, emptied before each test (a fresh one each costs a second or more).
      let db: Db;
      before(async () => (db = await freshDb(b)));
      after(async () => db.close());
      beforeEach(async () => void (await db.exec("TRUNCATE outbox, controllers, commands, command_counters, routes, gateway_leases, devices CASCADE")));

      it("a reading is stored once whoever inserts it and however often; only the first insert may publish it", async () => {
        const a = new Outbox(db, "a", 60_000), o = new Outbox(db, "b", 60_000);
        assert.deepEqual(await a.insert([reading(D1, 1), reading(D1, 2), reading(D2, 1), reading(D1, 1)]), [true, true, true, false]);
        // The same readings through another controller (a gateway failed over and resent them), and one new.
        assert.deepEqual(await o.insert([reading(D1, 2), reading(D2, 1), reading(D2, 2)]), [false, false, true]);
        const rows = await db.query<{ device: string; msg_id: number; claimed_by: string; body: Uint8Array }>("SELECT device, msg_id, claimed_by, body FROM outbox ORDER BY 1, 2");
        assert.deepEqual(rows.map((r) => `${r.device}/${r.msg_id}:${r.claimed_by}:${Buffer.from(r.body)}`), [`${D1}/1:a:r1`, `${D1}/2:a:r2`, `${D2}/1:a:r1`, `${D2}/2:b:r2`]);
      });

      it("a claim whose controller stops beating is taken over by another; a beating one's is not; published rows never are", async () => {
        const a = new Outbox(db, "a", 300), o = new Outbox(db, "b", 60_000);
        await a.beat();
        await o.beat();
        await a.insert([reading("d", 1), reading("d", 2), reading("d", 3)]);
        await a.published([{ device: "d", id: 3 }]);
        assert.deepEqual((await o.takeOver(10)).rows, [], "nothing is due while a beats");
        await sleep(400); // a's lease (its own, 300 ms) runs out: it died
        const t = await o.takeOver(10);
        assert.deepEqual(t.rows.map((r) => r.id).sort(), [1, 2]);
        assert.equal(t.fromOthers, 2);
        const back = t.rows.find((r) => r.id === 1)!;
        assert.deepEqual({ ...back, body: Buffer.from(back.body) }, reading("d", 1), "the row comes back as it was stored");
        // Now b holds them: a, alive again, cannot take them while b beats.
        await a.beat();
        assert.deepEqual((await a.takeOver(10)).rows, []);
        // A row released (its broker refused it) is due at once, for anyone, and counts as no one's.
        await o.release([{ device: "d", id: 1 }]);
        const again = await a.takeOver(10);
        assert.deepEqual([again.rows.map((r) => r.id), again.fromOthers], [[1], 0]);
        assert.equal(await a.unpublished(), 2);
        assert.equal(await a.forgetDead(60_000), 0);
      });

      it("published rows are pruned after the dedup window, unpublished ones never", async () => {
        const a = new Outbox(db, "a", 60_000);
        await a.insert([reading("d", 1), reading("d", 2)]);
        await a.published([{ device: "d", id: 1 }]);
        assert.equal(await a.prune(60_000, 100), 0, "within the window");
        await sleep(50);
        assert.equal(await a.prune(10, 100), 1);
        // Past the window a copy is new again: the window is what bounds the table.
        assert.deepEqual(await a.insert([reading("d", 1), reading("d", 2)]), [true, false]);
      });

      it("the pipeline acknowledges every reading once stored, publishes each once, and retries what the broker dropped", async () => {
        const published: string[] = [];
        let refuse = 1;
        const readings = new Readings({
          outbox: new Outbox(db, "a", 60_000), canPublish: () => true, log: silentLogger(), dedupWindowMs: 60_000, leaseMs: 60_000,
          publish: (r, done) => setImmediate(() => {
            if (refuse-- > 0) return done(false); // the first one is dropped (queue full, broker away)
            published.push(`${r.device}/${r.id}`);
            done(true);
          }),
        });
        await readings.beat();
        const acked: number[] = [];
        for (const id of [1, 2, 3, 2, 1]) readings.add(reading("d", id), () => acked.push(id));
        await until(() => acked.length === 5 && published.length === 2, "stored and published");
        assert.deepEqual(acked.sort(), [1, 1, 2, 2, 3], "copies are acknowledged too");
        assert.deepEqual(readings.stats, { ...readings.stats, stored: 3, duplicates: 2, released: 1 });
        await until(async () => (await db.query("SELECT 1 FROM outbox WHERE claimed_by IS NULL AND published_at IS NULL")).length === 1, "the release");
        await readings.sweep();
        await until(() => published.length === 3, "the released reading, taken again");
        assert.deepEqual(published.sort(), ["d/1", "d/2", "d/3"]);
        await readings.stop();
        assert.deepEqual(await db.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL"), [{ n: 0 }]);
      });

      it("a controller whose heartbeat lapsed (database away, process stalled) publishes only the rows still claimed by it; the rest go out once, through the one that took them over", async () => {
        const published: Record<string, string[]> = { a: [], b: [] };
        const run = (me: string, leaseMs: number) => new Readings({
          outbox: new Outbox(db, me, leaseMs), canPublish: () => true, log: silentLogger(), dedupWindowMs: 60_000, leaseMs,
          publish: (r, done) => setImmediate(() => {
            published[me].push(`${r.device}/${r.id}`);
            done(true);
          }),
        });
        const a = run("a", 300), b = run("b", 600);
        await a.beat();
        const beating = setInterval(() => void b.beat(), 100);
        await sleep(350); // a's claims ran out: no heartbeat from it since
        const acked: number[] = [];
        for (const id of [1, 2, 3]) a.add(reading("d", id), () => acked.push(id));
        await until(() => acked.length === 3, "stored by a");
        // b takes another's claims once its own held a whole lease.
        await until(async () => (await b.sweep(), published.b.length === 3), "taken over and published by b");
        clearInterval(beating);
        await a.beat();
        a.add(reading("d", 4), () => acked.push(4));
        await until(() => published.a.length === 1, "a new reading through a, once its heartbeat is back");
        await sleep(50);
        assert.deepEqual(published, { a: ["d/4"], b: ["d/1", "d/2", "d/3"] }, "each row published once");
        assert.equal(a.stats.lostClaims, 3);
        await a.stop();
        await b.stop();
      });

      it("a row taken over from a dead controller that the broker already has (seen published) is marked, not published again", async () => {
        const published: string[] = [];
        // a hands its rows to a broker whose PUBACKs never come back to it (it dies first).
        const a = new Readings({ outbox: new Outbox(db, "a", 200), canPublish: () => true, log: silentLogger(), dedupWindowMs: 60_000, leaseMs: 200, publish: () => {} });
        const b = new Readings({
          outbox: new Outbox(db, "b", 200), canPublish: () => true, log: silentLogger(), dedupWindowMs: 60_000, leaseMs: 200,
          publish: (r, done) => setImmediate(() => (published.push(`${r.device}/${r.id}`), done(true))),
        });
        await a.beat();
        const acked: number[] = [];
        for (const id of [1, 2, 3]) a.add(reading("d", id), () => acked.push(id));
        await until(() => acked.length === 3, "stored by a");
        // The broker delivered 1 and 2 (b watches the up topics); 3 never reached it.
        b.publishedElsewhere("d", 1);
        b.publishedElsewhere("d", 2);
        const beating = setInterval(() => void b.beat(), 40);
        await until(async () => (await b.sweep(), published.length === 1), "a's rows taken over by b");
        clearInterval(beating);
        await sleep(50);
        assert.deepEqual(published, ["d/3"], "only what the broker lacked");
        assert.equal(b.stats.alreadyPublished, 2);
        await until(async () => (await db.query("SELECT 1 FROM outbox WHERE published_at IS NULL")).length === 0, "all three marked published");
        await b.stop();
      });

      it("commands are numbered per device from the database, whichever controller takes them", async () => {
        await devices(db, D1, D2, D3);
        const book = new CommandBook(db);
        const ids: number[] = [];
        for (const who of ["a", "b", "a"]) ids.push(((await book.take(D1, Buffer.from([1]), who)) as { id: number }).id);
        assert.deepEqual(ids, [0, 1, 2]);
        assert.deepEqual(await book.take(D2, Buffer.from([1]), "b"), { id: 0 });
        assert.deepEqual(await book.take("nope", Buffer.from([1]), "a"), { rejected: "unknown device" });
        await db.query("UPDATE devices SET revoked_at = now() WHERE id = $1", [D2]);
        assert.deepEqual(await book.take(D2, Buffer.from([1]), "a"), { rejected: "device revoked" });
        for (let i = 0; i < MAX_UNCLOSED; i++) await book.take(D3, Buffer.from([i]), "a");
        assert.deepEqual(await book.take(D3, Buffer.from([9]), "a"), { rejected: `${MAX_UNCLOSED} commands already wait for this device` });
        // Settled: acked closes, a second report finds it closed; waiting keeps it (with its id) for next time.
        assert.equal(await book.settle(D1, 0, "acked"), true);
        assert.equal(await book.settle(D1, 0, "lost"), false);
        assert.equal(await book.settle(D1, 1, "waiting"), true);
        assert.deepEqual([await book.state(D1, 0), await book.state(D1, 1), await book.state(D1, 2)], ["acked", "waiting", "open"]);
        assert.deepEqual((await book.unclosedOf([D1])).map((c) => [c.id, [...c.payload]]), [[1, [1]], [2, [1]]]);
        await sleep(20);
        assert.equal((await book.expire(10)).length, 3 + MAX_UNCLOSED, "two of d1, one of d2 (taken before it was revoked), all of d3");
        assert.equal(await book.state(D1, 2), "expired");
      });

      it("routes: written when they change or are old, not per reading; a device that moved gets its commands again", async () => {
        await devices(db, D1, D2);
        const a = new RouteBook(db, "a", 60_000), o = new RouteBook(db, "b", 60_000);
        a.heard(D1, { gateway: "g1", run: "r1", link: null }, 0);
        a.heard(D2, { gateway: "g1", run: "r1", link: null }, 0);
        assert.deepEqual((await a.flush(0)).map((m) => m.device).sort(), [D1, D2], "first heard here: moved");
        a.heard(D1, { gateway: "g1", run: "r1", link: null }, 1000);
        assert.deepEqual(await a.flush(1000), []);
        assert.equal((await db.query("SELECT 1 FROM routes")).length, 2);
        // A restarted gateway is a new run: moved, though the gateway is the same.
        a.heard(D1, { gateway: "g1", run: "r2", link: null }, 2000);
        assert.deepEqual(await a.flush(2000), [{ device: D1, gateway: "g1", run: "r2" }]);
        // Another controller hears d2 through another gateway: the route is the database's, not a's memory.
        o.heard(D2, { gateway: "g2", run: "x", link: "ble:aa" }, 0);
        await o.flush(0);
        assert.deepEqual(await a.route(D2), { gateway: "g2", run: "x", link: "ble:aa", controller: "b", heardAt: (await a.route(D2))!.heardAt });
        // Refreshed after refreshMs even when nothing changed; forgotten (its gateway refused a command): moved again.
        const r = new RouteBook(db, "c", 100);
        r.heard(D1, { gateway: "g1", run: "r2", link: null }, 0);
        await r.flush(0);
        r.heard(D1, { gateway: "g1", run: "r2", link: null }, 150);
        assert.deepEqual(await r.flush(150), [], "refreshed, not moved");
        r.forget(D1);
        r.heard(D1, { gateway: "g1", run: "r2", link: null }, 160);
        assert.equal((await r.flush(160)).length, 1);
        assert.equal(await a.online(60_000), 2);
      });

      it("a gateway's lease: who held it before, renewed by its holder only, expired when it left", async () => {
        const a = new GatewayLeases(db, "a", 60_000), o = new GatewayLeases(db, "b", 60_000);
        assert.equal(await a.up("g1", "r1", "relay"), undefined);
        assert.deepEqual(await o.up("g1", "r1", "relay"), { controller: "a", run: "r1" }, "it failed over to b");
        await a.down("g1"); // a notices late: b's lease stays
        await a.renew(["g1"]);
        assert.deepEqual((await a.list()).map((l) => [l.gateway, l.controller]), [["g1", "b"]]);
        await o.down("g1");
        assert.deepEqual(await a.list(), [], "expired");
        assert.deepEqual(await a.up("g1", "r2", "relay"), { controller: "b", run: "r1" }, "the row remembers its last holder");
      });

      it("a command taken by one controller is handed by the one serving its device's gateway (NOTIFY), once", async () => {
        await devices(db, D1);
        const book = new CommandBook(db);
        const routes = new RouteBook(db, "b", 60_000);
        routes.heard(D1, { gateway: "g1", run: "r1", link: null }, 0);
        await routes.flush(0);
        const handed: string[] = [];
        const dispatch = (me: string, serves: string | undefined) => new CommandDispatch({
          db, book, routes: new RouteBook(db, me, 60_000), log: silentLogger(),
          serves: (gw) => (gw === serves ? "r1" : undefined),
          hand: (gw, device, id) => (handed.push(`${me}:${gw}:${device}:${id}`), "handed"),
        });
        const a = dispatch("a", undefined), bb = dispatch("b", "g1");
        await a.start();
        await bb.start();
        try {
          const c = await book.take(D1, Buffer.from([2, 1]), "a");
          assert.ok("id" in c);
          await a.taken(D1, c.id, Buffer.from([2, 1]));
          await until(() => handed.length === 1, "handed by b");
          assert.deepEqual(handed, [`b:g1:${D1}:0`]);
          await until(async () => (await book.state(D1, 0)) === "sent", "marked sent");
          // The backstop finds nothing open; a gateway reconnecting gets what is sent and unclosed again.
          await bb.sweep(["g1"]);
          assert.equal(handed.length, 1);
          await bb.gatewayUp("g1");
          assert.deepEqual(handed, [`b:g1:${D1}:0`, `b:g1:${D1}:0`]);
          await bb.settle(D1, 0, "acked");
          await bb.gatewayUp("g1");
          assert.equal(handed.length, 2, "an acknowledged command is never handed again");
        } finally {
          await a.stop();
          await bb.stop();
        }
      });
    });
  }
});
