// Splits a board's bundle into the part that stays in RAM and modules that are loaded from Storage only
// while a phase needs them: on Espruino every loaded function costs JsVars whether or not it runs, so the
// boot code (run once per power-up) and the handshake code (run once per session) leave RAM when they are
// not running, and come back when they are needed again.
//
// A module is named by its roots (TypeScript functions, "file:name"); it takes every function that can only
// be reached through them: after the roots are taken out of the call graph, nothing the rest of the bundle
// (its top-level code, its exports, the functions that stay, and any function taken as a value or called
// from a closure, which can run at any time) reaches. Every reference to a module's
// function, inside or outside the module, goes through the module's loader, so calling one while its module
// is not in RAM loads it first: where the line between phases falls decides memory and time, never whether
// the code works.
//
//   sesame.js (stays):   ...; var $Mhs; function $Lhs(){if(!$Mhs){eval(require("Storage").read("sesame.hs"));
//                        setTimeout(sesameDrop,0)}return $Mhs}   function sesameDrop(){$Mhs=void 0}
//                        ... $Lhs().Ct(a, b) ...
//   sesame.hs (module):  $Mhs={Ct:function(a,b){...},Mt:function(c){...}}
//
// A module lives for the event that loaded it: the loader queues sesameDrop(), which forgets every module,
// to run once that event has been handled (a zero timeout runs after the code running now). Module
// functions are made by eval inside the loader, so a closure one of them makes keeps only its own scope and
// the loader's (which holds nothing), never the module.
import * as acorn from "acorn";
import { remap } from "./espruino-slim";
import { FUNCTIONS, Out } from "./espruino-edit";
import { MISSING_METHODS } from "./espruino-rules";
import { RawSourceMap } from "./sourcemap";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Node = any;

export type ModuleSpec = {
  /** Short name: the Storage file is "sesame.<name>", the global holding it "$M<name>". */
  name: string;
  /** TypeScript functions ("firmware/device.ts:boot") that are the module's ways in. */
  roots: string[];
};

export type SplitModule = { name: string; storageName: string; code: string; map: RawSourceMap; functions: string[] };
export type SplitResult = { code: string; map: RawSourceMap; modules: SplitModule[] };

export const DROP_FUNCTION = "sesameDrop";
export const storageName = (module: string) => "sesame." + module;
/** The global a loaded module lives in. */
export const moduleGlobal = (module: string) => "$M" + module;

/**
 * Splits `code` (a slimmed, inlined board bundle: top-level functions and vars, exports last). `names` gives
 * the TypeScript "file:name" of each top-level function of the bundle, by its name in `code`.
 */
export function splitBundle(code: string, map: RawSourceMap, names: Map<string, string>, specs: ModuleSpec[]): SplitResult {
  const ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "script" }) as Node;
  const top = new Map<string, Node>();
  for (const s of ast.body) if (s.type === "FunctionDeclaration") top.set(s.id.name, s);
  // Every reference to a top-level function: the top-level function it sits in (undefined for top-level code
  // and for closures, which may be called at any time, from any phase), and whether it is read at load time.
  const refs: { id: Node; in: string | undefined; atLoad: boolean; parent: Node; key: string }[] = [];
  const visit = (n: Node, owner: string | undefined, atLoad: boolean, parent: Node, key: string) => {
    if (n.type === "Identifier" && top.has(n.name)) {
      const decl = parent && parent.type === "FunctionDeclaration" && key === "id";
      const prop = parent && ((parent.type === "MemberExpression" && key === "property" && !parent.computed) || (parent.type === "Property" && key === "key" && !parent.computed && !parent.shorthand));
      if (!decl && !prop) refs.push({ id: n, in: owner, atLoad, parent, key });
    }
    const closure = FUNCTIONS.has(n.type) && n.type !== "FunctionDeclaration";
    for (const k of Object.keys(n)) {
      if (k === "type" || k === "start" || k === "end") continue;
      const v = n[k];
      const o = closure ? undefined : owner;
      const l = atLoad && !FUNCTIONS.has(n.type);
      if (Array.isArray(v)) {
        for (const x of v) if (x && typeof x.type === "string") visit(x, o, l, n, k);
      } else if (v && typeof v.type === "string") visit(v, o, l, n, k);
    }
  };
  for (const s of ast.body) visit(s, s.type === "FunctionDeclaration" ? s.id.name : undefined, true, undefined, "");
  // A function taken as a value (a callback, a provider's member) may be called at any time, from any
  // phase: like a closure's calls, it counts as reached from outside every module.
  const calls = new Map<string | undefined, Set<string>>();
  for (const r of refs) {
    const called = r.parent && r.parent.type === "CallExpression" && r.key === "callee";
    const from = called ? r.in : undefined;
    if (!calls.has(from)) calls.set(from, new Set());
    calls.get(from)!.add(r.id.name);
  }
  const byTs = new Map<string, string>();
  for (const [bundleName, ts] of names) if (top.has(bundleName)) byTs.set(ts, bundleName);
  const byTsName = (ts: string) => byTs.get(ts);
  const reach = (from: Iterable<string>, blocked: Set<string>): Set<string> => {
    const seen = new Set<string>();
    const stack = [...from].filter((f) => !blocked.has(f));
    while (stack.length > 0) {
      const f = stack.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      for (const g of calls.get(f) ?? []) if (!blocked.has(g) && !seen.has(g)) stack.push(g);
    }
    return seen;
  };
  // Functions nothing reaches (a call the minifier found dead, after the code it called was bundled) go.
  const allRoots = specs.flatMap((spec) => spec.roots).map((r) => byTsName(r)).filter((r): r is string => r !== undefined);
  const alive = reach([...(calls.get(undefined) ?? []), ...allRoots], new Set());
  const dead = new Set([...top.keys()].filter((f) => !alive.has(f)));
  // Members: reachable from the roots, and from nothing else once the roots are taken out.
  const memberOf = new Map<string, string>();
  const modules: { spec: ModuleSpec; members: string[] }[] = [];
  for (const spec of specs) {
    const roots = new Set(spec.roots.map((r) => byTsName(r)).filter((r): r is string => r !== undefined && !memberOf.has(r)));
    if (roots.size === 0) continue;
    const outside = reach(calls.get(undefined) ?? [], roots);
    const members = [...reach(roots, new Set())].filter((f) => !outside.has(f) && !memberOf.has(f));
    for (const m of members) memberOf.set(m, spec.name);
    if (members.length > 0) modules.push({ spec, members: members.sort((a, b) => top.get(a).start - top.get(b).start) });
  }
  if (modules.length === 0 && dead.size === 0) return { code, map, modules: [] };
  // A module's functions are its object's keys, named as the minifier named them; one it named like a
  // method Espruino lacks (`at`) would be read by the bundle check as a call to that method, so it gets a `_`.
  const keyOf = (fn: string) => {
    const k = fn.replace(/^\$/, "");
    return Object.prototype.hasOwnProperty.call(MISSING_METHODS, k) ? k + "_" : k;
  };
  const loader = (m: string) => `$L${m}()`;
  // References to members: through the loader. At load time (top-level code) a stub that loads when called.
  const swap: { start: number; end: number; text: string }[] = [];
  for (const r of refs) {
    const m = memberOf.get(r.id.name);
    if (m === undefined) continue;
    const target = `${loader(m)}.${keyOf(r.id.name)}`;
    const fn = top.get(r.id.name);
    const text = !r.atLoad ? target : `function(${fn.params.map((_: Node, i: number) => "a" + i).join(",")}){return ${target}(${fn.params.map((_: Node, i: number) => "a" + i).join(",")})}`;
    const shorthand = r.parent && r.parent.type === "Property" && r.parent.shorthand;
    swap.push({ start: r.id.start, end: r.id.end, text: shorthand ? `${r.id.name}:${text}` : text });
  }
  swap.sort((a, b) => a.start - b.start);
  // The part that stays: everything but the members, then the loaders and sesameDrop.
  const main = new Out(code);
  let at = 0;
  for (const s of ast.body) {
    if (s.type !== "FunctionDeclaration" || !(memberOf.has(s.id.name) || dead.has(s.id.name))) continue;
    main.copyWith(at, s.start, swap);
    at = s.end;
  }
  const exportsAt = ast.body[ast.body.length - 1].start;
  if (at > exportsAt) throw new Error("split: the exports must come last");
  main.copyWith(at, exportsAt, swap);
  const names_ = modules.map((m) => m.spec.name);
  if (names_.length > 0) main.lit(names_.map((m) => {
    const g = moduleGlobal(m);
    return `var ${g};function $L${m}(){if(!${g}){eval(require("Storage").read(${JSON.stringify(storageName(m))}));setTimeout(${DROP_FUNCTION},0)}return ${g}}`;
  }).join(""));
  if (names_.length > 0) main.lit(`function ${DROP_FUNCTION}(){${names_.map((m) => `${moduleGlobal(m)}=void 0;`).join("")}}`);
  main.copyWith(exportsAt, code.length, swap);
  const out: SplitModule[] = modules.map(({ spec, members }) => {
    const o = new Out(code);
    o.lit(`${moduleGlobal(spec.name)}={`);
    members.forEach((f, i) => {
      const fn = top.get(f);
      o.lit((i > 0 ? "," : "") + keyOf(f) + ":function");
      o.copyWith(fn.id.end, fn.end, swap);
    });
    o.lit("};\n");
    return { name: spec.name, storageName: storageName(spec.name), code: o.text, map: remap(map, code, o.text, o.pieces), functions: members.map((f) => names.get(f) ?? f) };
  });
  return { code: main.text, map: remap(map, code, main.text, main.pieces), modules: out };
}
