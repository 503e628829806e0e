// scripts/lib/espruino-props.ts: a board's bundle carries the firmware's own long property names shortened
// (on Espruino a name over four characters costs one more JsVar on every object that has it), and keeps the
// names that code outside the bundle uses.
import assert from "node:assert/strict";
import * as path from "node:path";
import { mangledProps } from "../../../scripts/lib/espruino-props";
import { REPO_ROOT } from "../../../scripts/build";
import { readBoardFiles } from "../../../scripts/lib/espruino-modules";
import { DIST, ensureBuilt } from "../../harness/build-once";

describe("scripts/lib/espruino-props", () => {
  const props = mangledProps(REPO_ROOT);

  it("shortens the session state's long names and nothing shorter than five characters", () => {
    for (const name of ["confirmed", "transports", "seqHi", "rekeyAfterMs", "wantRekey"]) assert.ok(props.test(name), name);
    for (const name of ["spi", "aead", "seq", "tag"]) assert.ok(!props.test(name), name);
  });

  it("keeps JavaScript's, the natives', the provider's and the tests' names", () => {
    for (const name of ["length", "buffer", "byteLength", "subarray", "encrypt", "SHA256", "hwRand", "sha256", "random", "sender", "pending", "lostIds", "onWrite", "notify", "compress", "decompress"])
      assert.ok(!props.test(name), name);
  });

  it("leaves none of those long names in a Puck.js's Storage files", async function () {
    this.timeout(120_000);
    const built = await ensureBuilt();
    assert.equal(built.error, undefined);
    const code = Object.values(readBoardFiles(path.join(DIST, "espruino"), "puckjs")).join("\n");
    for (const name of ["confirmed", "transports", "rekeyAfterMs", "wantRekey", "lateKeyMs"]) assert.ok(!new RegExp(`\\.${name}\\b|\\b${name}:`).test(code), name);
    assert.match(code, /\.length\b/);
  });
});
