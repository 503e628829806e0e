// scripts/lib/espruino-inline.ts: functions called from one place are written out there, and what the
// program computes does not change; what cannot be moved safely stays a function.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as vm from "node:vm";
import * as acorn from "acorn";
import { inlineBundle } from "../../../scripts/lib/espruino-inline";
import type { RawSourceMap } from "../../../scripts/lib/sourcemap";
import { ensureBuilt, DIST } from "../../harness/build-once";
import { loadBoards, REPO_ROOT } from "../../../scripts/build";

const EMPTY_MAP: RawSourceMap = { version: 3, sources: ["x.ts"], names: [], mappings: "" };

/** Top-level function declarations of a script. */
function functions(code: string): string[] {
  const ast = acorn.parse(code, { ecmaVersion: "latest" }) as unknown as { body: { type: string; id?: { name: string } }[] };
  return ast.body.filter((s) => s.type === "FunctionDeclaration").map((s) => s.id!.name);
}

/** Runs `code` then `expr`, returning what the log recorded and the value. */
function run(code: string, expr: string): { log: string[]; value: unknown } {
  const log: string[] = [];
  const ctx = vm.createContext({ log: (s: string) => log.push(s) });
  vm.runInContext(code, ctx);
  return { log, value: vm.runInContext(expr, ctx) };
}

/** The same program, inlined: the same log and value, and which functions are left. */
function same(code: string, expr: string): string[] {
  const out = inlineBundle(code, EMPTY_MAP).code;
  assert.deepEqual(run(out, expr), run(code, expr), `inlined:\n${out}`);
  return functions(out);
}

describe("espruino-inline", () => {
  it("writes out a function called once, keeping the order of evaluation and early returns", () => {
    const code = [
      "function $sign(x){log('sign '+x);if(x<0)return -1;if(x===0)return 0;return 1}",
      "function $twice(a,b){let s=a+b;return s*2}",
      "function $f(x){log('f');let y=$sign(x)+$g(x);const z=$twice(y,x);return z}",
      "function $g(x){log('g '+x);return x}",
      "function $main(n){let t=0;for(let i=-n;i<=n;i++)t+=$f(i);return t}",
    ].join("\n");
    const left = same(code, "$main(3)");
    assert.deepEqual(left.sort(), ["$main"]);
  });

  it("unpacks statements the minifier packed into expressions", () => {
    const code = [
      "function $a(x){log('a'+x);return x+1}",
      "function $b(x){log('b'+x);return x*3}",
      "function $c(x){log('c');return x}",
      "function $main(x){let r=0;return x>2&&(r=$a(x)),x<0||$b(x),r=x?$c(r):r,r}",
    ].join("\n");
    for (const x of [-1, 0, 1, 5]) same(code, `$main(${x})`);
    assert.deepEqual(same(code, "$main(5)"), ["$main"]);
  });

  it("leaves functions that are called twice, define closures, return from loops, or are used as values", () => {
    const code = [
      "function $twice(x){return x+1}",
      "function $closure(x){return function(){return x}}",
      "function $loop(xs){for(let i=0;i<xs.length;i++)if(xs[i]>1)return i;return -1}",
      "function $value(x){return x*2}",
      "function $main(){let f=$value;return $twice(1)+$twice(2)+$closure(3)()+$loop([0,5])+f(4)}",
    ].join("\n");
    assert.deepEqual(same(code, "$main()").sort(), ["$closure", "$loop", "$main", "$twice", "$value"]);
  });

  it("writes an argument in place of its parameter only where nothing can change it while the body runs", () => {
    const code = [
      "function $g(x,f){f();return x}",
      "function $h(x){return x*3}",
      "function $main(){let v=1;const r=$g(v,function(){v=2});let w=4;return r*100+v*10+$h(w)}",
    ].join("\n");
    assert.deepEqual(same(code, "$main()"), ["$main"]);
    const out = inlineBundle(code, EMPTY_MAP).code;
    assert.match(out, /=w\*3|w\*3/, `the argument w is used in place of x:\n${out}`);
  });

  it("does not move a call past a read of a property the call may change", () => {
    const code = [
      "var $o={n:1};",
      "function $bump(){$o.n=5;return 1}",
      "function $main(){return $o.n+$bump()}",
    ].join("\n");
    same(code, "$main()");
  });

  it("leaves a Puck.js bundle with far fewer functions than the 158 it had before", async function () {
    this.timeout(600_000);
    await ensureBuilt();
    const puck = loadBoards(REPO_ROOT).find((b) => b.name === "puckjs")!;
    const code = fs.readFileSync(`${DIST}/espruino/${puck.name}.js`, "utf8");
    assert.ok(functions(code).length < 100, `${functions(code).length} top-level functions`);
  });
});
