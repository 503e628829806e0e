// The sandbox's JsVar estimate (host/sim/espruino-jsvars.ts, what the fleet simulator stops a board on) against
// the real interpreter's high-water mark of a whole session (host/sim/espruino-memory.ts). Runs only when
// ESPRUINO_BOARD_BINS names a 32-bit build with a Puck.js's JsVar size (see README, "Room for the application").
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BoardProfile } from "../../../firmware/board";
import { runFleet } from "../../../host/sim/fleet";
import { boardJsVarBytes, interpreterFor, measureEspruinoBoard } from "../../../host/sim/espruino-memory";
import { readBoardFiles } from "../../../scripts/lib/espruino-modules";
import { DIST, ensureBuilt } from "../../harness/build-once";

const puck = JSON.parse(fs.readFileSync("boards/puckjs.json", "utf8")) as BoardProfile;

describe("host/sim/espruino-memory: the sandbox's JsVars against the real interpreter", function () {
  this.timeout(1_800_000);

  it("a Puck.js's peak in the simulator is within 10 % of the interpreter's for a whole session", async function () {
    if (!process.env.ESPRUINO_BOARD_BINS) this.skip();
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-mem-"));
    const i = await interpreterFor(puck, scratch).finally(() => fs.rmSync(scratch, { recursive: true, force: true }));
    if (!i.fixed || i.blocksize !== boardJsVarBytes(puck.memory.jsVars ?? 0)) this.skip();
    const { error } = await ensureBuilt();
    assert.equal(error, undefined, error);
    const real = await measureEspruinoBoard(puck, readBoardFiles(path.join(DIST, "espruino"), "puckjs"), { resolution: 24, trials: 1 });
    const { results } = await runFleet({ boards: 1, link: "ble", loss: 0, minutes: 10, seed: 1, profiles: ["puckjs"] });
    const sim = results[0].memPeak;
    assert.ok(real.peak !== undefined);
    assert.ok(Math.abs(sim - real.peak) <= real.peak / 10, `the simulator says ${sim} JsVars, the interpreter ${real.peak}`);
  });
});
