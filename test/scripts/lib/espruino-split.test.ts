// scripts/lib/espruino-split.ts: what only a module's roots reach moves into a Storage file of its own,
// loaded when called and forgotten once the event is over; the program computes the same either way.
import assert from "node:assert/strict";
import * as path from "node:path";
import * as vm from "node:vm";
import { checkEspruino } from "../../../scripts/espruino-check";
import { splitBundle } from "../../../scripts/lib/espruino-split";
import type { RawSourceMap } from "../../../scripts/lib/sourcemap";
import { readBoardFiles } from "../../../scripts/lib/espruino-modules";
import { DIST, ensureBuilt } from "../../harness/build-once";

const EMPTY_MAP: RawSourceMap = { version: 3, sources: ["x.ts"], names: [], mappings: "" };

const PROGRAM = [
  "var $count=0;",
  "function $helper(x){return x*2}",
  "function $hsOnly(x){return $helper(x)+$inner(x)}",
  "function $inner(x){$count++;return x+1}",
  "function $start(x){return $hsOnly(x)+1}",
  "function $tick(x){return $helper(x)}",
  "function $bootOnly(){return function(){return $tick(5)}}",
  "var sesame={start:$start,tick:$tick,boot:$bootOnly};",
].join("\n");
const NAMES = new Map([
  ["$helper", "f.ts:helper"], ["$hsOnly", "f.ts:hsOnly"], ["$inner", "f.ts:inner"], ["$start", "f.ts:start"], ["$tick", "f.ts:tick"], ["$bootOnly", "f.ts:bootOnly"],
]);

/** Runs the main file with its modules in Storage; the host's timeouts are run by hand. */
function load(main: string, files: Record<string, string>) {
  const timeouts: (() => void)[] = [];
  const ctx = vm.createContext({
    require: (m: string) => {
      assert.equal(m, "Storage");
      return { read: (name: string) => files[name] };
    },
    setTimeout: (f: () => void) => timeouts.push(f),
  });
  vm.runInContext(main, ctx);
  return { ctx, run: (js: string) => vm.runInContext(js, ctx), endEvent: () => timeouts.splice(0).forEach((f) => f()) };
}

describe("espruino-split", () => {
  it("moves what only the roots reach into a module, loaded while an event runs and dropped after it", () => {
    const split = splitBundle(PROGRAM, EMPTY_MAP, NAMES, [{ name: "hs", roots: ["f.ts:start"] }, { name: "boot", roots: ["f.ts:bootOnly"] }]);
    const hs = split.modules.find((m) => m.name === "hs")!;
    assert.deepEqual(hs.functions.sort(), ["f.ts:hsOnly", "f.ts:inner", "f.ts:start"]);
    assert.deepEqual(split.modules.find((m) => m.name === "boot")!.functions, ["f.ts:bootOnly"]);
    assert.doesNotMatch(split.code, /function \$(hsOnly|inner|start|bootOnly)\(/, "the members left the main file");
    const files = Object.fromEntries(split.modules.map((m) => [m.storageName, m.code]));
    const whole = load(PROGRAM, {});
    const parts = load(split.code, files);
    assert.equal(parts.run("$Mhs"), undefined, "nothing loaded at start");
    assert.equal(parts.run("sesame.start(3)"), whole.run("sesame.start(3)"));
    assert.equal(parts.run("$count"), 1);
    assert.notEqual(parts.run("$Mhs"), undefined, "loaded by the call");
    parts.endEvent();
    assert.equal(parts.run("$Mhs"), undefined, "dropped once the event is over");
    // A closure made by a module function outlives the module and still works.
    parts.run("var f=sesame.boot()");
    parts.endEvent();
    assert.equal(parts.run("$Mboot"), undefined);
    assert.equal(parts.run("f()"), 10);
    assert.equal(parts.run("sesame.start(4)"), whole.run("sesame.start(4)"));
  });

  it("never names a module's function like a method Espruino lacks (the minifier named one `at`)", () => {
    const program = ["function at(x){return x+1}", "function $start(x){return at(x)*2}", "var sesame={start:$start};"].join("\n");
    const split = splitBundle(program, EMPTY_MAP, new Map([["at", "f.ts:at"], ["$start", "f.ts:start"]]), [{ name: "hs", roots: ["f.ts:start"] }]);
    const hs = split.modules[0];
    assert.match(hs.code, /\bat_:function/);
    assert.doesNotMatch(split.code + hs.code, /\.at\(/);
    assert.deepEqual(checkEspruino(hs.code).map((p) => p.construct), []);
    assert.equal(load(split.code, { [hs.storageName]: hs.code }).run("sesame.start(3)"), 8);
  });

  it("leaves the main file alone when no root is in the bundle", () => {
    const split = splitBundle(PROGRAM, EMPTY_MAP, NAMES, [{ name: "x", roots: ["f.ts:nowhere"] }]);
    assert.equal(split.code, PROGRAM);
    assert.deepEqual(split.modules, []);
  });

  it("gives a Puck.js its boot and handshake code as Storage files, out of sesame.js", async function () {
    this.timeout(600_000);
    await ensureBuilt();
    const files = readBoardFiles(path.join(DIST, "espruino"), "puckjs");
    assert.deepEqual(Object.keys(files).sort(), ["sesame.boot", "sesame.hs", "sesame.js"]);
    // The psk handshake's protocol names live in the handshake module only.
    assert.ok(!files["sesame.js"].includes("sesame/1 psk-I") && files["sesame.hs"].includes("sesame/1 psk-I"));
    // The configuration parser runs at boot only.
    assert.ok(!files["sesame.js"].includes("must be hex") && files["sesame.boot"].includes("must be hex"));
  });
});
