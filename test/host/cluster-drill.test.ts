// The failure drill (test/harness/failure-drill.ts) in short: 2 controllers, 2 gateways, Postgres and
// Mosquitto as real processes, a small fleet under load, one kill -9 of each kind. The counts must be exact:
// no reading acknowledged to a board is missing at the application, none arrives twice, and every board
// delivers again after each kill. The times are `npm run bench cluster`'s (200 boards, every process).
import assert from "node:assert/strict";
import { failureDrill } from "../harness/failure-drill";

describe("cluster failure drill: kill -9 of a controller, a gateway and Postgres under load", function () {
  this.timeout(600_000);

  it("loses no acknowledged reading, delivers none twice, and every board delivers again after each kill", async () => {
    const f = await failureDrill({ boards: 24, kills: ["controller0", "gateway1", "postgres"], periodMs: 500, quietMs: 2000 });
    assert.equal(f.kills.length, 3);
    for (const k of f.kills) assert.equal(k.notRecovered, 0, `boards that never delivered again after kill -9 ${k.what}`);
    assert.ok(f.acknowledged > 24 * 10, `too few readings got through (${f.acknowledged})`);
    assert.equal(f.missing, 0, "readings acknowledged to boards and missing at the application");
    assert.equal(f.duplicates, 0, "readings delivered to the application twice");
  });
});
