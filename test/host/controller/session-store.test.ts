// The controller's half of the session handoff (host/controller/session-store.ts, docs/PROTOCOL.md 3.8) on both
// database backends: what a gateway is granted, who holds a session, what a fetch hands over, and the cases
// where nothing may be resumed (unknown, revoked, rotated) or only closed (too old).
import assert from "node:assert/strict";
import { MasterKey } from "../../../host/controller/masterkey";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { handoffOf } from "../../harness/handoff";
import { BACKENDS, stopSharedPostgres } from "./backends";

after(stopSharedPostgres);

for (const b of BACKENDS) {
  describe(`session store (${b.name})`, function () {
    this.timeout(60_000);
    let store: ControllerStore;
    let device: string;
    beforeEach(async () => {
      store = await openControllerStore({ db: await b.options(), masterKeys: [MasterKey.generate()] });
      device = (await store.registry.provision({ board: "puckjs" })).device.id;
    });
    afterEach(() => store.close());

    it("grants the holder the largest top under its key, hands the session to one fetching gateway at a time, each from its own numbers, and tells the old holder it is taken", async () => {
      const h = handoffOf(store);
      const saved = h.saved(device, 7);
      assert.equal(await h.report("gw0", device, 7, 2048, 3, saved), "grant,0,2048");
      assert.equal(await h.report("gw0", device, 7, 3072, 40, saved), "grant,0,3072");
      assert.equal(await h.report("gw0", device, 7, 2048, 41, saved), "grant,0,3072", "a top never goes down under one key");
      // Two gateways fetch it: the second starts where the first's numbers end.
      assert.equal(await h.fetch("gw1", 7), `resume,3072,5120,41,${saved}`);
      assert.equal(await h.fetch("gw2", 7), `resume,5120,7168,41,${saved}`);
      // The old holders' reports are refused; the new holder's are granted.
      assert.equal(await h.report("gw0", device, 7, 4096, 41, saved), "taken");
      assert.equal(await h.report("gw1", device, 7, 6144, 41, saved), "taken");
      assert.equal(await h.report("gw2", device, 7, 8192, 50, saved), "grant,0,8192");
      // A new sending key index starts its top afresh.
      const next = h.saved(device, 7, 1);
      assert.equal(await h.report("gw2", device, 7, 2048, 50, next), "grant,1,2048");
      assert.equal(h.sessions.stats.malformed, 0);
    });

    it("resumes nothing it does not know, nor a revoked or rotated device's session (deleted)", async () => {
      const h = handoffOf(store);
      assert.equal(await h.fetch("gw1", 99), "none");
      const other = (await store.registry.provision({ board: "puckjs" })).device.id;
      await h.report("gw0", device, 7, 2048, 3, h.saved(device, 7));
      await h.report("gw0", other, 8, 2048, 3, h.saved(other, 8));
      await store.registry.revoke(device);
      await store.registry.rotate(other);
      assert.equal(await h.fetch("gw1", 7), "none");
      assert.equal(await h.fetch("gw1", 8), "none");
      assert.equal((await store.db.query("SELECT 1 FROM device_sessions")).length, 0);
    });

    it("a state not reported for longer than the limit is handed out only to be closed, then deleted", async () => {
      const h = handoffOf(store, 100);
      const saved = h.saved(device, 7);
      await h.report("gw0", device, 7, 2048, 3, saved);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await h.fetch("gw1", 7), `close,2048,4096,3,${saved}`);
      assert.equal(await h.fetch("gw1", 7), "none");
    });

    it("drops malformed reports without answering them", async () => {
      const h = handoffOf(store);
      assert.equal(await h.report("gw0", device, 7, 2048, 3, "not,a,session"), "(no answer)");
      assert.equal(await h.report("gw0", "someone-else", 7, 2048, 3, h.saved(device, 7)), "(no answer)", "the peer must be the session's");
      assert.equal(h.sessions.stats.malformed, 2);
    });
  });
}
