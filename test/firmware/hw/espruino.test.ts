// firmware/hw/espruino.ts on the real interpreter: the native AES and SHA-256 still find room for their
// results (flat strings: contiguous JsVars) once memory is fragmented, because each keeps its previous
// result as the room for its next one. Runs only when ESPRUINO_BOARD_BINS names a 32-bit build with a
// Puck.js's JsVar size (see README, "Room for the application").
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BoardProfile } from "../../../firmware/board";
import { runScript, writeStorage } from "../../../host/sim/espruino-console";
import { boardJsVarBytes, interpreterFor } from "../../../host/sim/espruino-memory";
import { BOOT_LOAD } from "../../../scripts/lib/flash-espruino";
import { readBoardFiles } from "../../../scripts/lib/espruino-modules";
import { DIST, ensureBuilt } from "../../harness/build-once";

const puck = JSON.parse(fs.readFileSync("boards/puckjs.json", "utf8")) as BoardProfile;

// The Puck.js bundle's provider seals and MACs once; then memory is filled with two-JsVar array entries,
// every other one deleted, and every run still long enough for a flat string taken (the smallest flat
// Uint8Array is 19 bytes, three JsVars): over a thousand JsVars free, none of them in such a run. Then the
// same seal and MAC again.
const SCRIPT = [
  BOOT_LOAD,
  `var p=sesame.boardProvider({crypto:require("crypto"),hwRand:E.hwRand});`,
  `function H(a){var s="";for(var i=0;i<a.length;i++)s+=(256+a[i]).toString(16).substr(1);return s}`,
  `var k=new Uint8Array(16),n=new Uint8Array(13),ad=new Uint8Array(4),m=new Uint8Array(20),a=p.ccm(k,8,13);`,
  `for(var i=0;i<20;i++)m[i]=i;`,
  `var s0=H(a.seal(n,ad,m)),h0=H(p.hmac(k,m));`,
  `var A=[];while(process.memory().free>80)for(var j=0;j<25;j++)A.push("ab");for(var i=0;i<A.length;i+=2)delete A[i];`,
  `var B=[],x;while(E.getAddressOf(x=new Uint8Array(19),true))B.push(x);x=0;`,
  `var flat=E.getAddressOf(new Uint8Array(19),true)!=0,free=process.memory().free;`,
  `var s1,h1;try{s1=H(a.seal(n,ad,m));h1=H(p.hmac(k,m))}catch(e){s1=String(e)}`,
  `print("RESULT "+JSON.stringify({flat:flat,free:free,seal:s1===s0?"same":s1,hmac:h1===h0?"same":h1}));`,
].join("\n");

describe("firmware/hw/espruino: native crypto on the real interpreter", function () {
  this.timeout(600_000);

  it("seals and MACs in fragmented memory, where no new flat string fits", async function () {
    if (!process.env.ESPRUINO_BOARD_BINS) this.skip();
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-hw-"));
    try {
      const i = await interpreterFor(puck, scratch);
      if (!i.fixed || i.blocksize !== boardJsVarBytes(puck.memory.jsVars ?? 0)) this.skip();
      const { error } = await ensureBuilt();
      assert.equal(error, undefined, error);
      await writeStorage(i.bin, scratch, readBoardFiles(path.join(DIST, "espruino"), "puckjs"));
      const out = await runScript(i.bin, scratch, SCRIPT, 120_000);
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      assert.ok(line, out.slice(-2000));
      const r = JSON.parse(line.slice(7)) as { flat: boolean; free: number; seal: string; hmac: string };
      assert.equal(r.flat, false, "the fragmentation leaves no room for a new flat string");
      assert.ok(r.free > 1000, `${r.free} JsVars free`);
      assert.deepEqual({ seal: r.seal, hmac: r.hmac }, { seal: "same", hmac: "same" });
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});
