// Makes a board's bundle cheaper in JsVars, the RAM unit of Espruino, without changing what it computes.
// A bundle is loaded from Storage (flash), where function bodies stay in flash, so what costs RAM is each
// function (about 5 JsVars, plus one per parameter), each top-level variable (one), and the scope link every
// function declared inside the bundle's wrapper carries. Three rewrites of the wrapped bundle
// (`var sesame=(function(){ ... return{...};})();`, see espruino-bundle.ts), each checked by scope analysis:
//
//   1. constants: a top-level `var X = <number>` (or a constant expression of such) that nothing assigns is
//      replaced by its value at every use; esbuild does not inline them because every module imports
//      `#target` (esbuild inlines constants only from modules without imports).
//   2. one-expression functions: a top-level `function f(a, b) { return <expression> }` is written out at
//      each call where that cannot change what is evaluated (see below): the #target intrinsics (alloc, shl,
//      shr, u32, fdiv ...) and the many one-line helpers; the function goes when only such calls used it.
//   3. no wrapper: the body moves to the top level with every top-level name prefixed (so it cannot meet a
//      board's global such as D1 or LED1), and the exports become `var sesame={...}`; a function at
//      the top level carries no scope link.
//
// The source map is carried through: every original segment is moved to where its text now is.
import * as acorn from "acorn";
import { RawSourceMap, decodeMappings } from "./sourcemap";
import { FUNCTIONS, Piece } from "./espruino-edit";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Node = any;

type Binding = { name: string; scope: Scope; kind: "var" | "let" | "fn" | "param"; decl: Node; refs: Node[]; writes: number };
type Scope = { parent: Scope | undefined; fn: boolean; names: Map<string, Binding>; node: Node };

/** Globals a wrapper may name; a wrapper naming anything else is left alone. */
const SAFE_GLOBALS = new Set(["Math", "Uint8Array", "Int32Array"]);

export class SlimError extends Error {}

/** Scope analysis of what esbuild writes for Espruino (no destructuring, no default parameters: the check forbids them). */
function analyse(ast: Node): { refOf: Map<Node, Binding | undefined>; scopes: Scope[]; unbound: Set<string>; shorthand: Set<Node>; callOf: Map<Node, Node> } {
  const scopes: Scope[] = [];
  const scopeOf = new Map<Node, Scope>();
  const newScope = (parent: Scope | undefined, fn: boolean, node: Node): Scope => {
    const s: Scope = { parent, fn, names: new Map(), node };
    scopes.push(s);
    scopeOf.set(node, s);
    return s;
  };
  const fnScope = (s: Scope): Scope => (s.fn ? s : fnScope(s.parent!));
  const declare = (s: Scope, id: Node, kind: Binding["kind"], decl: Node) => {
    if (id.type !== "Identifier") throw new SlimError(`unsupported binding pattern ${id.type}`);
    if (!s.names.has(id.name)) s.names.set(id.name, { name: id.name, scope: s, kind, decl, refs: [], writes: 0 });
  };
  // Pass 1: scopes and declarations.
  const declareIn = (node: Node, s: Scope): void => {
    if (!node || typeof node.type !== "string") return;
    switch (node.type) {
      case "FunctionDeclaration":
        declare(s, node.id, "fn", node);
        fnBody(node, s);
        return;
      case "FunctionExpression":
      case "ArrowFunctionExpression":
        fnBody(node, s);
        return;
      case "ClassDeclaration":
      case "ClassExpression":
        if (node.type === "ClassDeclaration") declare(s, node.id, "let", node);
        children(node, s);
        return;
      case "VariableDeclaration":
        for (const d of node.declarations) declare(node.kind === "var" ? fnScope(s) : s, d.id, node.kind === "var" ? "var" : "let", d);
        for (const d of node.declarations) if (d.init) declareIn(d.init, s);
        return;
      case "BlockStatement": {
        const b = newScope(s, false, node);
        for (const st of node.body) declareIn(st, b);
        return;
      }
      case "ForStatement":
      case "ForInStatement":
      case "ForOfStatement": {
        const b = newScope(s, false, node);
        children(node, b);
        return;
      }
      case "SwitchStatement": {
        declareIn(node.discriminant, s);
        const b = newScope(s, false, node);
        for (const c of node.cases) children(c, b);
        return;
      }
      case "CatchClause": {
        const b = newScope(s, false, node);
        if (node.param) declare(b, node.param, "let", node);
        for (const st of node.body.body) declareIn(st, b);
        scopeOf.set(node.body, b);
        return;
      }
      default:
        children(node, s);
    }
  };
  const fnBody = (node: Node, s: Scope): void => {
    const f = newScope(s, true, node);
    if (node.type === "FunctionExpression" && node.id) declare(f, node.id, "fn", node);
    for (const p of node.params) declare(f, p, "param", node);
    if (node.body.type === "BlockStatement") {
      scopeOf.set(node.body, f);
      for (const st of node.body.body) declareIn(st, f);
    } else declareIn(node.body, f);
  };
  const children = (node: Node, s: Scope): void => {
    for (const key of Object.keys(node)) {
      if (key === "type" || key === "start" || key === "end") continue;
      const v = node[key];
      if (Array.isArray(v)) for (const x of v) declareIn(x, s);
      else if (v && typeof v.type === "string") declareIn(v, s);
    }
  };
  const top = newScope(undefined, true, ast);
  for (const st of ast.body) declareIn(st, top);

  // Pass 2: references.
  const refOf = new Map<Node, Binding | undefined>();
  const unbound = new Set<string>();
  const shorthand = new Set<Node>();
  const callOf = new Map<Node, Node>();
  const lookup = (s: Scope | undefined, name: string): Binding | undefined => (s === undefined ? undefined : s.names.get(name) ?? lookup(s.parent, name));
  const ref = (id: Node, s: Scope, write: boolean) => {
    const b = lookup(s, id.name);
    refOf.set(id, b);
    if (b) {
      b.refs.push(id);
      if (write) b.writes++;
    } else unbound.add(id.name);
  };
  const visit = (node: Node, s: Scope, parent: Node, key: string): void => {
    if (!node || typeof node.type !== "string") return;
    const inner = scopeOf.get(node) ?? s;
    if (node.type === "Identifier") {
      if (parent && ((parent.type === "MemberExpression" && key === "property" && !parent.computed) ||
        ((parent.type === "Property" || parent.type === "MethodDefinition" || parent.type === "PropertyDefinition") && key === "key" && !parent.computed) ||
        parent.type === "LabeledStatement" || parent.type === "BreakStatement" || parent.type === "ContinueStatement")) return;
      const write = (parent?.type === "AssignmentExpression" && key === "left") || parent?.type === "UpdateExpression" ||
        ((parent?.type === "ForInStatement" || parent?.type === "ForOfStatement") && key === "left");
      ref(node, s, write);
      return;
    }
    if (node.type === "Property" && node.shorthand) {
      if (node.value.type !== "Identifier") throw new SlimError("unsupported shorthand property");
      shorthand.add(node.value);
      visit(node.value, s, node, "value");
      return;
    }
    if (node.type === "CallExpression" && node.callee.type === "Identifier") callOf.set(node.callee, node);
    // A function's name, parameters and body, a block's statements, a loop's head: in the node's own scope.
    for (const k of Object.keys(node)) {
      if (k === "type" || k === "start" || k === "end") continue;
      const v = node[k];
      if (Array.isArray(v)) for (const x of v) visit(x, inner, node, k);
      else if (v && typeof v.type === "string") visit(v, inner, node, k);
    }
  };
  visit(ast, top, undefined, "");
  return { refOf, scopes, unbound, shorthand, callOf };
}

type Edit = { start: number; end: number; render: () => string };

/** Evaluates a constant expression of numbers (or undefined when it is not one). */
function constantValue(node: Node, known: (id: Node) => number | undefined): number | undefined {
  switch (node.type) {
    case "Literal":
      return typeof node.value === "number" ? node.value : undefined;
    case "Identifier":
      return known(node);
    case "UnaryExpression": {
      const a = constantValue(node.argument, known);
      if (a === undefined) return undefined;
      return node.operator === "-" ? -a : node.operator === "~" ? ~a : node.operator === "+" ? +a : undefined;
    }
    case "BinaryExpression": {
      const a = constantValue(node.left, known);
      const b = constantValue(node.right, known);
      if (a === undefined || b === undefined) return undefined;
      switch (node.operator) {
        case "+": return a + b;
        case "-": return a - b;
        case "*": return a * b;
        case "|": return a | b;
        case "&": return a & b;
        case "^": return a ^ b;
        case "<<": return a << b;
        case ">>": return a >> b;
        case ">>>": return a >>> b;
        default: return undefined;
      }
    }
    default:
      return undefined;
  }
}

function literal(v: number): string {
  if (!Number.isFinite(v) || !Number.isInteger(v) || Object.is(v, -0)) throw new SlimError(`constant ${v} is not an integer`);
  return v < 0 ? `(${v})` : String(v);
}

export type SlimResult = { code: string; map: RawSourceMap; stats: { constants: number; strings: number; inlined: number; wrappers: number; prefix: string } };

/** Flash a string constant may take once written out at each of its uses. */
const STRING_INLINE_BYTES = 256;

/** A JavaScript string literal in ASCII (the bundle is ASCII: esbuild's charset). */
function stringLiteral(v: string): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/**
 * Rewrites a wrapped bundle (`var <globalName>=(function(){\n...\nreturn{...};})();\n`). Throws SlimError when
 * the code has a shape this does not handle; the caller then keeps the bundle as it was.
 */
export function slimBundle(code: string, map: RawSourceMap, globalName: string): SlimResult {
  const ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "script" }) as Node;
  const decl = ast.body[0];
  if (ast.body.length !== 1 || decl.type !== "VariableDeclaration" || decl.declarations.length !== 1 || decl.declarations[0].id.name !== globalName)
    throw new SlimError("not a wrapped bundle");
  const call = decl.declarations[0].init;
  if (call?.type !== "CallExpression" || call.arguments.length !== 0 || call.callee.type !== "FunctionExpression" || call.callee.params.length !== 0)
    throw new SlimError("not a wrapped bundle");
  const wrapper = call.callee;
  const body: Node[] = wrapper.body.body;
  const ret = body[body.length - 1];
  if (ret?.type !== "ReturnStatement" || ret.argument?.type !== "ObjectExpression") throw new SlimError("the wrapper does not end in return{...}");
  const { refOf, scopes, unbound, shorthand, callOf } = analyse(ast);
  const top = scopes.find((s) => s.node === wrapper)!;

  const edits: Edit[] = [];
  const removed = new Set<Node>(); // top-level declarators and functions that go
  const replacedRefs = new Map<Node, string>(); // identifier -> replacement text

  // 1. constants (to a fixed point: a constant may be an expression of constants).
  let strings = 0;
  const constants = new Map<Binding, number>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const b of top.names.values()) {
      if (b.kind !== "var" || b.writes > 0 || constants.has(b) || !b.decl.init) continue;
      const v = constantValue(b.decl.init, (id) => {
        const r = refOf.get(id);
        return r !== undefined ? constants.get(r) : undefined;
      });
      if (v === undefined || !Number.isInteger(v) || Object.is(v, -0)) continue;
      constants.set(b, v);
      changed = true;
    }
  }
  // A constant read before its declaration at load time would have thrown on Espruino (no hoisting); after
  // inlining it would not. Such code does not exist in a bundle that passed the sandbox, so no check here.
  for (const [b, v] of constants) {
    removed.add(b.decl);
    for (const id of b.refs) replacedRefs.set(id, literal(v));
  }
  // String constants too, where writing them out costs little flash: a string held in a variable takes
  // JsVars for good, one in the code only while an expression that uses it is evaluated.
  for (const b of top.names.values()) {
    if (b.kind !== "var" || b.writes > 0 || !b.decl.init || b.decl.init.type !== "Literal" || typeof b.decl.init.value !== "string") continue;
    const text = stringLiteral(b.decl.init.value);
    if (b.refs.length * text.length > STRING_INLINE_BYTES) continue;
    removed.add(b.decl);
    for (const id of b.refs) replacedRefs.set(id, text);
    strings++;
  }

  const localNames = new Set<string>();
  for (const sc of scopes) if (sc !== top && sc.node !== ast) for (const n of sc.names.keys()) localNames.add(n);

  // 2. one-expression functions, written out at their calls. Safe because (a) after step 3 every top-level
  // name is prefixed and no local name carries the prefix, so a name in the expression means the same at
  // any call; (b) the expression assigns nothing and defines no function; (c) the arguments are evaluated
  // as the call would: every argument is stable (a literal, a local or never-assigned name, or a member
  // read where the expression calls nothing), so reading it twice, late or not at all changes nothing; or
  // the expression is straight (no ?:, && or ||), uses each parameter once in order, evaluates its first
  // parameter before anything but function names, and only the first argument is not stable.
  let wrappers = 0;
  let inlined = 0;
  type Wrapper = { params: string[]; expr: Node; fn: Node; straightOnce: boolean; calls: boolean };
  const wrapperBody = new Map<Binding, Wrapper>();
  const paramEdits: Edit[] = [];
  const argStacks = new Map<Node, string[][]>();
  for (const b of top.names.values()) {
    const fn = b.decl;
    if (b.kind !== "fn" || fn.type !== "FunctionDeclaration" || b.writes > 0) continue;
    const stmts = fn.body.body;
    if (stmts.length !== 1 || stmts[0].type !== "ReturnStatement" || !stmts[0].argument) continue;
    const expr = stmts[0].argument;
    const params: string[] = fn.params.map((p: Node) => p.name);
    const order: string[] = [];
    let ok = true;
    let straight = true;
    let calls = false;
    let firstFirst = true; // nothing but function names is evaluated before the first parameter
    const ids: Node[] = [];
    const walk = (n: Node, parent: Node, key: string) => {
      if (!n || typeof n.type !== "string" || !ok) return;
      if (FUNCTIONS.has(n.type) || ["ThisExpression", "AssignmentExpression", "UpdateExpression", "SequenceExpression", "NewExpression"].includes(n.type) &&
        !(n.type === "NewExpression" && n.callee.type === "Identifier" && SAFE_GLOBALS.has(n.callee.name))) ok = false;
      if (n.type === "ConditionalExpression" || n.type === "LogicalExpression") straight = false;
      if (n.type === "CallExpression" || n.type === "NewExpression") calls = true;
      if (n.type === "MemberExpression" && ids.length === 0) firstFirst = false;
      if (n.type === "Identifier") {
        if (parent?.type === "MemberExpression" && key === "property" && !parent.computed) return;
        if (parent?.type === "Property" && key === "key" && !parent.computed) return;
        const r = refOf.get(n);
        if (r && r.kind === "param" && r.scope.node === fn) {
          order.push(n.name);
          ids.push(n);
        } else if (r === undefined && SAFE_GLOBALS.has(n.name) && !localNames.has(n.name) && !top.names.has(n.name)) return;
        else if (r && r.scope === top && r !== b) {
          // A top-level name: prefixed, so the same everywhere. Read before the first parameter, only a function's.
          if (ids.length === 0 && !(r.kind === "fn" && r.writes === 0)) firstFirst = false;
        } else ok = false;
        return;
      }
      for (const k of Object.keys(n)) {
        if (k === "type" || k === "start" || k === "end") continue;
        const v = n[k];
        if (Array.isArray(v)) v.forEach((x) => walk(x, n, k));
        else if (v && typeof v.type === "string") walk(v, n, k);
      }
    };
    walk(expr, undefined, "");
    if (!ok) continue;
    const straightOnce = straight && firstFirst && order.length === params.length && order.every((p, i) => p === params[i]);
    wrapperBody.set(b, { params, expr, fn, straightOnce, calls });
    // The parameters inside the expression: the call's arguments while it is being written out.
    argStacks.set(fn, []);
    for (const id of ids) {
      const i = params.indexOf(id.name);
      paramEdits.push({
        start: id.start,
        end: id.end,
        render: () => {
          const st = argStacks.get(fn)!;
          return st.length > 0 ? st[st.length - 1][i] : id.name;
        },
      });
    }
  }
  const stable = (a: Node, calls: boolean): boolean => {
    if (a.type === "Literal" || (a.type === "UnaryExpression" && a.operator === "-" && a.argument.type === "Literal")) return true;
    if (a.type === "Identifier") {
      const r = refOf.get(a);
      return r !== undefined && (r.scope !== top || r.writes === 0);
    }
    return !calls && a.type === "MemberExpression" && !a.computed && stable(a.object, calls);
  };
  const callEdits = new Map<Node, Edit>();
  for (const [b, w] of wrapperBody) {
    let onlyCalls = true;
    for (const id of b.refs) {
      if (id === w.fn.id) continue;
      const call = callOf.get(id);
      const args: Node[] | undefined = call?.callee === id ? call.arguments : undefined;
      const fits = args !== undefined && args.length === w.params.length && !args.some((a) => a.type === "SpreadElement") &&
        (args.every((a) => stable(a, w.calls)) || (w.straightOnce && args.every((a, i) => i === 0 || stable(a, w.calls))));
      if (!fits) {
        onlyCalls = false;
        continue;
      }
      callEdits.set(call, {
        start: call.start,
        end: call.end,
        render: () => {
          const texts = args!.map((a: Node) => (a.type === "Identifier" || a.type === "Literal" ? render(a.start, a.end) : "(" + render(a.start, a.end) + ")"));
          const st = argStacks.get(w.fn)!;
          st.push(texts);
          const out = "(" + render(w.expr.start, w.expr.end) + ")";
          st.pop();
          return out;
        },
      });
      inlined++;
    }
    if (onlyCalls) {
      removed.add(w.fn);
      wrappers++;
    }
  }

  // 3. no wrapper: prefix every top-level name that stays.
  const prefix = ["$", "_", "$_", "_$"].find((p) => ![...localNames, ...unbound].some((n) => n.startsWith(p)));
  if (prefix === undefined) throw new SlimError("no free prefix for top-level names");
  for (const b of top.names.values()) for (const id of b.refs) if (!replacedRefs.has(id)) replacedRefs.set(id, prefix + b.name);
  for (const b of top.names.values()) {
    const d = b.decl;
    if (b.kind === "fn" && d.type === "FunctionDeclaration") replacedRefs.set(d.id, prefix + b.name);
    if (b.kind === "var" || b.kind === "let") replacedRefs.set(d.id, prefix + b.name);
  }
  if (top.names.has(globalName)) throw new SlimError(`the bundle has a top-level ${globalName}`);

  // Edits: identifiers, calls, removed declarations.
  for (const [id, text] of replacedRefs) edits.push({ start: id.start, end: id.end, render: () => (shorthand.has(id) ? id.name + ":" + text : text) });
  for (const e of callEdits.values()) edits.push(e);
  for (const e of paramEdits) edits.push(e);
  for (const st of body.slice(0, -1)) {
    if (st.type === "FunctionDeclaration" && removed.has(st)) edits.push({ start: st.start, end: st.end, render: () => "" });
    if (st.type === "VariableDeclaration") {
      const kept = st.declarations.filter((d: Node) => !removed.has(d));
      if (kept.length === st.declarations.length) continue;
      edits.push({
        start: st.start,
        end: st.end,
        render: () => (kept.length === 0 ? "" : st.kind + " " + kept.map((d: Node) => render(d.start, d.end)).join(",") + ";"),
      });
    }
  }
  // The wrapper itself: `var g=(function(){` ... `return{...};})();`
  edits.push({ start: decl.start, end: wrapper.body.start + 1, render: () => "" });
  edits.push({ start: ret.start, end: decl.end, render: () => `var ${globalName}=` + render(ret.argument.start, ret.argument.end) + ";" });
  edits.sort((a, b) => a.start - b.start || b.end - a.end);

  // Rendering, with a record of where each piece copied at the top level went (for the map; text rendered
  // inside a rewritten call or declaration is not recorded, and maps to the segment before it).
  const pieces: { from: number; to: number; at: number }[] = [];
  let depth = 0;
  function render(start: number, end: number): string {
    let out = "";
    let at = start;
    const emit = (from: number, to: number) => {
      if (to <= from) return;
      if (depth === 0) pieces.push({ from, to, at: out.length });
      out += code.slice(from, to);
    };
    if (depth > 64) throw new SlimError("functions written out inside each other too deeply");
    for (let i = 0; i < edits.length; i++) {
      const e = edits[i];
      if (e.start < at || e.start >= end) continue;
      if (e.end > end) throw new SlimError("overlapping edits");
      emit(at, e.start);
      depth++;
      out += e.render();
      depth--;
      at = e.end;
    }
    emit(at, end);
    return out;
  }
  const newCode = render(0, code.length);
  // Pieces from nested renders were recorded with the offset of the text they landed in, which the
  // template may have moved (a parenthesis, the wrapper's prefix): good enough for a map to the line.
  return { code: newCode, map: remap(map, code, newCode, pieces), stats: { constants: constants.size, strings, inlined, wrappers, prefix } };
}


/** Moves every segment of `map` (for `oldCode`) to where its text is in `newCode`. */
export function remap(map: RawSourceMap, oldCode: string, newCode: string, pieces: Piece[]): RawSourceMap {
  const lineStarts = (s: string) => {
    const r = [0];
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) r.push(i + 1);
    return r;
  };
  const oldStarts = lineStarts(oldCode);
  const newStarts = lineStarts(newCode);
  const sorted = [...pieces].sort((a, b) => a.from - b.from);
  const moved = (off: number): number | undefined => {
    let lo = 0, hi = sorted.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid].from <= off) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    const p = sorted[found];
    if (off < p.to) return p.at + off - p.from;
    return undefined;
  };
  const out: [number, number, number, number, number][][] = newStarts.map(() => []);
  const lines = decodeMappings(map.mappings);
  lines.forEach((segs, line) => {
    for (const [col, src, sl, sc, nm] of segs) {
      const n = moved(oldStarts[line] + col);
      if (n === undefined) continue;
      let l = 0, lo = 0, hi = newStarts.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (newStarts[mid] <= n) { l = mid; lo = mid + 1; } else hi = mid - 1;
      }
      out[l].push([n - newStarts[l], src, sl, sc, nm]);
    }
  });
  return { ...map, mappings: encodeMappings(out) };
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
function vlq(n: number): string {
  let v = n < 0 ? (-n << 1) | 1 : n << 1;
  let s = "";
  do {
    let d = v & 31;
    v >>>= 5;
    if (v > 0) d |= 32;
    s += B64[d];
  } while (v > 0);
  return s;
}

export function encodeMappings(lines: [number, number, number, number, number][][]): string {
  let src = 0, sl = 0, sc = 0, nm = 0;
  return lines
    .map((segs) => {
      let col = 0;
      return [...segs]
        .sort((a, b) => a[0] - b[0])
        .map(([c, s, l, k, n]) => {
          let t = vlq(c - col) + vlq(s - src) + vlq(l - sl) + vlq(k - sc);
          col = c; src = s; sl = l; sc = k;
          if (n >= 0) { t += vlq(n - nm); nm = n; }
          return t;
        })
        .join(",");
    })
    .join(";");
}
