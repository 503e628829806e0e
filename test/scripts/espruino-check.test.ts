import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as esbuild from "esbuild";
import { checkEspruino, EspruinoProblem } from "../../scripts/espruino-check";
import { bundleEspruino } from "../../scripts/lib/espruino-bundle";
import type { RawSourceMap } from "../../scripts/lib/sourcemap";
import { REPO_ROOT } from "../../scripts/build";
import { DIST, ensureBuilt, readArtefact } from "../harness/build-once";

// Each TypeScript snippet goes into feature.ts, imported by entry.ts, and is built exactly as the build
// builds firmware (bundleEspruino: esbuild ESM, minified, es2017, wrapped), so a problem must be traced
// through the source map back to feature.ts and to the line of the construct: every snippet has it on line 2.
const TS_CASES: [construct: string, snippet: string][] = [
  ["destructuring", "export function f(o: { a: number }) {\n  const { a } = o; return a;\n}"],
  ["destructuring", "export function f(xs: number[]) {\n  const [a, b] = xs; return a + b;\n}"],
  ["destructuring", "export function f(o: { a: number }) {\n  let a = 0; ({ a } = o); return a;\n}"],
  ["destructuring", "export function f(\n  { a }: { a: number }) { return a; }"],
  ["spread", "export function f(xs: number[]) {\n  return Math.max(...xs);\n}"],
  ["spread", "export function f(xs: number[]) {\n  return [...xs, 1];\n}"],
  ["rest parameter", "export function f(\n  ...xs: number[]) { return xs.length; }"],
  ["default parameter", "export function f(\n  a = 1) { return a; }"],
  ["generator function", "export function f() {\n  return (function* () { yield 1; })();\n}"],
  ["async function", "export function f() {\n  return (async () => 1)();\n}"],
  ["await", "export async function f(p: Promise<number>) {\n  return 1 + await p;\n}"],
  ["exponentiation (**)", "export function f(a: number, b: number) {\n  return a ** b;\n}"],
  ["exponentiation (**)", "export function f(a: number, b: number) {\n  a **= b; return a;\n}"],
  ["labelled statement", "export function f(n: number) {\n  outer: for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i * j > 6) break outer;\n  return n;\n}"],
  ["computed key", "export function f(k: string) {\n  return { [k]: 1 };\n}"],
  ["computed key", "export function f(k: string) {\n  return class { [k]() { return 1; } };\n}"],
  ["class extends Error", "export class Oops\n  extends Error {}"],
  ["class extends Uint8Array", "export class Buf\n  extends Uint8Array {}"],
  ["Map", "export function f() {\n  return new Map<number, number>();\n}"],
  ["Set", "export function f() {\n  return new Set<number>();\n}"],
  ["WeakMap", "export function f() {\n  return new WeakMap<object, number>();\n}"],
  ["WeakMap", "export class Secret {\n  #key = 1; get() { return this.#key; }\n}"],
  ["Symbol", "export function f() {\n  return Symbol('x');\n}"],
  ["BigInt", "export function f(n: number) {\n  return BigInt(n);\n}"],
  ["Proxy", "export function f(o: object) {\n  return new Proxy(o, {});\n}"],
  ["Reflect", "export function f(o: object) {\n  return Reflect.ownKeys(o);\n}"],
  ["TextEncoder", "export function f(s: string) {\n  return new TextEncoder().encode(s);\n}"],
  ["TextDecoder", "export function f(b: Uint8Array) {\n  return new TextDecoder().decode(b);\n}"],
  ["Math.imul", "export function f(a: number, b: number) {\n  return Math.imul(a, b);\n}"],
  ["Math.clz32", "export function f(a: number) {\n  return Math.clz32(a);\n}"],
  ["Math.pow", "export function f(a: number, b: number) {\n  return Math.pow(a, b);\n}"],
  ["Array.from", "export function f(a: number[]) {\n  return Array.from(a);\n}"],
  ["Object.freeze", "export function f(o: object) {\n  return Object.freeze(o);\n}"],
  ["Array.prototype.slice", "export function f(a: ArrayLike<number>) {\n  return Array.prototype.slice.call(a, 1);\n}"],
  ["Uint8Array.from", "export function f(a: number[]) {\n  return Uint8Array.from(a);\n}"],
  [".at()", "export function f(a: number[]) {\n  return a.at(-1);\n}"],
  ["call before declaration", "// load-time call\nexport const TABLE = makeTable();\nfunction makeTable() { return [1, 2]; }"],
  ["call reaches function before its declaration", "function first() { return second(); }\nexport const TABLE = first();\nfunction second() { return 1; }"],
  ["var read before declaration", "// load-time read\nexport const X = later + 1;\nvar later = 2;"],
  ["closure over loop variable", "export function f() {\n  const fs: (() => number)[] = []; for (let i = 0; i < 3; i++) fs.push(() => i); return fs;\n}"],
];

// What esbuild cannot emit for es2017 (BigInt literals) or lowers (`?.`): checked as plain JavaScript.
const JS_CASES: [construct: string, code: string][] = [
  ["BigInt literal", "var x = 10n;"],
  ["optional chaining", "var o = {}; var y = o?.a;"],
  ["destructuring", "var { a } = { a: 1 };"],
  ["labelled statement", "a: for (;;) break a;"],
  ["exponentiation (**)", "var z = 2 ** 10;"],
];

let dir: string;

async function buildSnippet(snippet: string): Promise<EspruinoProblem[]> {
  fs.writeFileSync(path.join(dir, "feature.ts"), snippet + "\n");
  fs.writeFileSync(path.join(dir, "entry.ts"), 'export * from "./feature";\n');
  const outfile = path.join(dir, "out", "bundle.js");
  const bundle = await bundleEspruino({ entry: "entry.ts", root: dir, outfile, globalName: "sesame" });
  return checkEspruino(bundle.code, bundle.map, { file: "out/bundle.js", mapDir: path.dirname(outfile), root: dir });
}

describe("espruino-check", () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-check-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [construct, snippet] of TS_CASES) {
    it(`rejects ${construct}: ${snippet.split("\n")[1].trim().slice(0, 60)}`, async () => {
      const problems = await buildSnippet(snippet);
      const hit = problems.find((p) => p.construct === construct);
      assert.ok(hit, `expected "${construct}", got ${JSON.stringify(problems, null, 1)}`);
      assert.equal(hit.file, "feature.ts", "the original file, through the source map");
      assert.equal(hit.line, 2, `the original line of ${construct}`);
    });
  }

  for (const [construct, code] of JS_CASES) {
    it(`rejects ${construct} in plain JavaScript, at the artefact's own position`, () => {
      const problems = checkEspruino(code, undefined, { file: "plain.js" });
      const hit = problems.find((p) => p.construct === construct);
      assert.ok(hit, `expected "${construct}", got ${JSON.stringify(problems)}`);
      assert.equal(hit.file, "plain.js");
      assert.equal(hit.line, 1);
    });
  }

  it("accepts what Espruino runs: lowered ?. and ??, getters, classes, template literals, for..of", async () => {
    const problems = await buildSnippet(
      "export class C { get v() { return 1; } }\n" +
        "export function f(o: { a?: number } | undefined, xs: number[]) { let s = 0; for (const x of xs) s += x; return `${o?.a ?? s}`; }",
    );
    assert.deepEqual(problems, []);
  });

  it("allows load-time calls to functions declared above, and calls deferred into function bodies", () => {
    const code = "function a() { return b(); }\nfunction b() { return 1; }\nvar x = a();\nfunction c() { return d(); }\nfunction d() { return 2; }";
    assert.deepEqual(checkEspruino(code), []);
  });

  it("treats IIFEs and forEach callbacks as running in place", () => {
    const problems = checkEspruino("(function () { later(); })();\n[1].forEach(function () { later(); });\nfunction later() {}");
    assert.deepEqual(problems.map((p) => [p.construct, p.line]), [["call before declaration", 1], ["call before declaration", 2]]);
  });

  it("ignores `typeof X` feature tests and locals that shadow missing globals", () => {
    assert.deepEqual(checkEspruino("var hasMap = typeof Map !== 'undefined'; function f(Map) { return new Map(); }"), []);
  });

  it("catches the for-let closure in esbuild's own iife export helper (why the build wraps ESM instead)", async () => {
    const entry = path.join(dir, "iife.ts");
    fs.writeFileSync(entry, "export const a = 1;\nexport function b() { return 2; }\n");
    const out = await esbuild.build({ entryPoints: [entry], bundle: true, format: "iife", globalName: "x", minify: true, target: "es2017", write: false });
    const problems = checkEspruino(out.outputFiles[0].text);
    assert.ok(problems.some((p) => p.construct === "closure over loop variable"), JSON.stringify(problems));
  });

  it("passes the real artefacts in dist/espruino", async function () {
    this.timeout(300_000);
    const { error } = await ensureBuilt();
    readArtefact("espruino/core.js", error);
    const names = fs.readdirSync(path.join(DIST, "espruino")).filter((f) => f.endsWith(".js"));
    for (const name of names) {
      const map = JSON.parse(readArtefact(`espruino/${name}.map`, error)) as RawSourceMap;
      const problems = checkEspruino(readArtefact(`espruino/${name}`, error), map, { file: `dist/espruino/${name}`, mapDir: path.join(DIST, "espruino"), root: REPO_ROOT });
      assert.deepEqual(problems, [], `dist/espruino/${name}`);
    }
  });
});
