// Writes out, at their one call, the functions of a board's bundle that are called from one place only: on
// Espruino every function costs JsVars for as long as the bundle is loaded (the function, its code pointer,
// its name, one per parameter: 4 + parameters), however rarely it runs, while its body, inlined into its
// caller, costs nothing until it runs. Runs on the output of espruino-slim.ts (top-level names prefixed, so
// no local name can hide one) and before the last esbuild pass, which minifies the result again.
//
//   function $f(a, b) { ...; if (c) return x; ...; return y; }      called once, as   const v = $f(p, q);
//   ->  let v; do { let a_i1 = p, b_i1 = q; ...; if (c) { v = x; break; } ...; v = y; break; } while (0);
//
// (`do ... while (0)` is the early exit Espruino has: it runs no labelled break.) The body's own names are
// renamed apart. A function is written out only where that cannot change what runs: it is a top-level
// function declaration referred to once, by a call inside another function; it defines no function (a
// closure would then capture its caller's scope), reads neither `this` nor `arguments`, has no try, and
// returns only outside loops and switches; the call is evaluated first in its statement (nothing but names
// and literals is read before it), so it can move in front of that statement. First, statements the
// minifier packed into expressions (`a(), b()`, `x && f()`, `return c ? f() : g()`) are unpacked, so
// the calls in them have statements of their own.
import * as acorn from "acorn";
import { RawSourceMap } from "./sourcemap";
import { remap } from "./espruino-slim";
import { FUNCTIONS, Out, Piece } from "./espruino-edit";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Node = any;

const LOOPS = new Set(["ForStatement", "ForInStatement", "ForOfStatement", "WhileStatement", "DoWhileStatement", "SwitchStatement"]);

type Edit = { start: number; end: number; render: (o: Out) => void };

/** Copies code[start, end) with the edits inside it applied (edits sorted, not overlapping). */
function emit(o: Out, start: number, end: number, edits: Edit[]): void {
  let at = start;
  for (const e of edits) {
    if (e.start < at || e.start >= end) continue;
    if (e.end > end) continue;
    o.copy(at, e.start);
    e.render(o);
    at = e.end;
  }
  o.copy(at, end);
}

function children(node: Node): Node[] {
  const out: Node[] = [];
  for (const key of Object.keys(node)) {
    if (key === "type" || key === "start" || key === "end") continue;
    const v = node[key];
    if (Array.isArray(v)) {
      for (const x of v) if (x && typeof x.type === "string") out.push(x);
    } else if (v && typeof v.type === "string") out.push(v);
  }
  return out;
}

function walk(node: Node, visit: (n: Node, parent: Node | undefined, key: string) => boolean | void, parent?: Node, key = ""): void {
  if (visit(node, parent, key) === false) return;
  for (const k of Object.keys(node)) {
    if (k === "type" || k === "start" || k === "end") continue;
    const v = node[k];
    if (Array.isArray(v)) {
      for (const x of v) if (x && typeof x.type === "string") walk(x, visit, node, k);
    } else if (v && typeof v.type === "string") walk(v, visit, node, k);
  }
}

const inList = (parent: Node, key: string) =>
  (parent.type === "Program" || parent.type === "BlockStatement") && key === "body" || parent.type === "SwitchCase" && key === "consequent";

// ---- 1. unpacking statements --------------------------------------------------------------------------

/** Rewrites expression statements and returns packed by the minifier into plain statements, inside functions. */
function unpack(code: string, ast: Node): { code: string; pieces: Piece[]; changed: number } {
  const edits: Edit[] = [];
  let changed = 0;
  const exprStatements = (o: Out, e: Node): void => {
    if (e.type === "SequenceExpression") for (const x of e.expressions) exprStatements(o, x);
    else if (e.type === "LogicalExpression" && (e.operator === "&&" || e.operator === "||")) {
      o.lit(e.operator === "&&" ? "if(" : "if(!(");
      o.copy(e.left.start, e.left.end);
      o.lit(e.operator === "&&" ? "){" : ")){");
      exprStatements(o, e.right);
      o.lit("}");
    } else if (e.type === "ConditionalExpression") {
      o.lit("if(");
      o.copy(e.test.start, e.test.end);
      o.lit("){");
      exprStatements(o, e.consequent);
      o.lit("}else{");
      exprStatements(o, e.alternate);
      o.lit("}");
    } else if (e.type === "AssignmentExpression" && e.operator === "=" && e.left.type === "Identifier" && e.right.type === "ConditionalExpression") {
      // x = c ? a : b  ->  if (c) x = a; else x = b;
      const c = e.right;
      o.lit("if(");
      o.copy(c.test.start, c.test.end);
      o.lit("){");
      o.copy(e.left.start, e.left.end);
      o.lit("=");
      o.copy(c.consequent.start, c.consequent.end);
      o.lit(";}else{");
      o.copy(e.left.start, e.left.end);
      o.lit("=");
      o.copy(c.alternate.start, c.alternate.end);
      o.lit(";}");
    } else {
      o.copy(e.start, e.end);
      o.lit(";");
    }
  };
  const returns = (o: Out, e: Node): void => {
    if (e.type === "SequenceExpression") {
      for (const x of e.expressions.slice(0, -1)) exprStatements(o, x);
      returns(o, e.expressions[e.expressions.length - 1]);
    } else if (e.type === "ConditionalExpression") {
      o.lit("if(");
      o.copy(e.test.start, e.test.end);
      o.lit("){");
      returns(o, e.consequent);
      o.lit("}");
      returns(o, e.alternate);
    } else {
      o.lit("return ");
      o.copy(e.start, e.end);
      o.lit(";");
    }
  };
  const packed = (e: Node): boolean => e.type === "SequenceExpression" || e.type === "ConditionalExpression" || (e.type === "LogicalExpression" && e.operator !== "??") ||
    (e.type === "AssignmentExpression" && e.operator === "=" && e.left.type === "Identifier" && e.right.type === "ConditionalExpression");
  const visit = (n: Node, parent: Node | undefined, key: string, inFn: boolean): void => {
    if (inFn && parent) {
      const brace = !inList(parent, key);
      if (n.type === "ExpressionStatement" && packed(n.expression)) {
        changed++;
        edits.push({ start: n.start, end: n.end, render: (o) => { if (brace) o.lit("{"); exprStatements(o, n.expression); if (brace) o.lit("}"); } });
        return;
      }
      if (n.type === "IfStatement" && n.test.type === "SequenceExpression") {
        // `if (a, b) ...` -> `a; if (b) ...`; the if's branches may hold more to unpack.
        changed++;
        const seq = n.test.expressions;
        const last = seq[seq.length - 1];
        edits.push({ start: n.start, end: last.start, render: (o) => { if (brace) o.lit("{"); for (const x of seq.slice(0, -1)) exprStatements(o, x); o.lit("if("); } });
        if (brace) edits.push({ start: n.end, end: n.end, render: (o) => o.lit("}") });
        visit(n.consequent, n, "consequent", true);
        if (n.alternate) visit(n.alternate, n, "alternate", true);
        return;
      }
      if (n.type === "ReturnStatement" && n.argument && (n.argument.type === "SequenceExpression" || n.argument.type === "ConditionalExpression")) {
        changed++;
        edits.push({ start: n.start, end: n.end, render: (o) => { if (brace) o.lit("{"); returns(o, n.argument); if (brace) o.lit("}"); } });
        return;
      }
    }
    const fn = inFn || FUNCTIONS.has(n.type);
    for (const k of Object.keys(n)) {
      if (k === "type" || k === "start" || k === "end") continue;
      const v = n[k];
      if (Array.isArray(v)) {
        for (const x of v) if (x && typeof x.type === "string") visit(x, n, k, fn);
      } else if (v && typeof v.type === "string") visit(v, n, k, fn);
    }
  };
  visit(ast, undefined, "", false);
  edits.sort((a, b) => a.start - b.start || a.end - b.end);
  const o = new Out(code);
  emit(o, 0, code.length, edits);
  return { code: o.text, pieces: o.pieces, changed };
}

// ---- 2. inlining -----------------------------------------------------------------------------------------

/** Every name declared in a function (parameters, let/const/var, catch parameters). */
function declaredNames(fn: Node): Set<string> {
  const names = new Set<string>();
  for (const p of fn.params) names.add(p.name);
  walk(fn.body, (n) => {
    if (n.type === "VariableDeclarator") names.add(n.id.name);
    if (n.type === "CatchClause" && n.param) names.add(n.param.name);
  });
  return names;
}

/** Whether a function body may be written out: see the header. */
function inlinable(fn: Node): { ok: boolean; earlyReturn: boolean } {
  let ok = fn.params.every((p: Node) => p.type === "Identifier");
  let earlyReturn = false;
  const last = fn.body.body[fn.body.body.length - 1];
  const visit = (n: Node, inLoop: boolean): void => {
    if (!ok) return;
    if (FUNCTIONS.has(n.type) || n.type === "ThisExpression" || n.type === "TryStatement" || n.type === "ClassExpression" || n.type === "ClassDeclaration") ok = false;
    if (n.type === "Identifier" && n.name === "arguments") ok = false;
    if (n.type === "ReturnStatement") {
      if (inLoop) ok = false;
      if (n !== last) earlyReturn = true;
    }
    for (const c of children(n)) visit(c, inLoop || LOOPS.has(n.type));
  };
  for (const s of fn.body.body) visit(s, false);
  return { ok, earlyReturn };
}

/** What may be read before a hoisted call because the call cannot change it. */
type Stability = { isTarget: (call: Node) => boolean; stable: (e: Node) => boolean };

/**
 * The call to hoist in expression `e`: a target that `e` evaluates first (always, not under && || ?:),
 * everything evaluated before it being stable.
 */
function firstCall(e: Node, st: Stability): Node | undefined {
  const inOrder = (parts: Node[]): Node | undefined => {
    for (const p of parts) {
      if (p === null || p === undefined) continue;
      if (st.stable(p)) continue;
      return firstCall(p, st);
    }
    return undefined;
  };
  switch (e.type) {
    case "CallExpression":
    case "NewExpression":
      if (e.type === "CallExpression" && st.isTarget(e)) return e;
      if (e.arguments.some((a: Node) => a.type === "SpreadElement")) return undefined;
      if (!st.stable(e.callee)) return e.callee.type === "MemberExpression" ? undefined : firstCall(e.callee, st);
      return inOrder(e.arguments);
    case "BinaryExpression":
      return inOrder([e.left, e.right]);
    case "LogicalExpression":
      return firstCall(e.left, st);
    case "ConditionalExpression":
      return firstCall(e.test, st);
    case "UnaryExpression":
      return e.operator === "delete" ? undefined : firstCall(e.argument, st);
    case "MemberExpression":
      return e.computed ? inOrder([e.object, e.property]) : firstCall(e.object, st);
    case "AssignmentExpression":
      // `x = f()`, `o.p = f()`: x and o are bound before f runs; `x += f()` reads x first, so x must be stable.
      if (e.left.type === "Identifier" && (e.operator === "=" || st.stable(e.left))) return firstCall(e.right, st);
      if (e.operator === "=" && e.left.type === "MemberExpression" && !e.left.computed && st.stable(e.left.object)) return firstCall(e.right, st);
      return undefined;
    case "ArrayExpression":
      return inOrder(e.elements);
    case "ObjectExpression":
      if (e.properties.some((p: Node) => p.type !== "Property" || p.computed)) return undefined;
      return inOrder(e.properties.map((p: Node) => p.value));
    case "TemplateLiteral":
      return inOrder(e.expressions);
    default:
      return undefined;
  }
}

export type InlineStats = { inlined: number; passes: number };

/** Flash bytes a function's extra copies may take per JsVar its removal saves. */
const FLASH_PER_JSVAR = 48;

/** Where a candidate's call is and how the statement around it is taken apart. */
type Site = {
  call: Node;
  /** The statement (or arrow function) whose text is replaced. */
  node: Node;
  parent: Node;
  key: string;
  kind: "statement" | "declaration" | "arrow";
  /** For a declaration: the declarator whose initialiser holds the call. */
  index: number;
};

/** One pass: writes out every candidate whose own body calls no other candidate. */
function inlinePass(code: string, ast: Node, counter: { n: number }, keep: Set<string>): { code: string; pieces: Piece[]; inlined: number } {
  const top = new Map<string, Node>();
  const topNames = new Set<string>();
  for (const s of ast.body) {
    if (s.type === "FunctionDeclaration") {
      top.set(s.id.name, s);
      topNames.add(s.id.name);
    }
    if (s.type === "VariableDeclaration") for (const d of s.declarations) topNames.add(d.id.name);
  }
  const identifiers = new Set<string>();
  const refs = new Map<string, Node[]>();
  const callers = new Map<Node, Node>();
  const assignedNames = new Set<string>();
  const assignedProps = new Set<string>();
  const written = (target: Node) => {
    if (target.type === "Identifier") assignedNames.add(target.name);
    else if (target.type === "MemberExpression" && !target.computed) assignedProps.add(target.property.name);
  };
  // References of top-level functions and the function each sits in; names and properties ever written.
  const visit = (n: Node, fn: Node | undefined, parent: Node | undefined, key: string) => {
    if (n.type === "Identifier") {
      identifiers.add(n.name);
      const decl = parent && parent.type === "FunctionDeclaration" && key === "id";
      const prop = parent && ((parent.type === "MemberExpression" && key === "property" && !parent.computed) || (parent.type === "Property" && key === "key" && !parent.computed));
      if (!decl && !prop && top.has(n.name)) {
        refs.set(n.name, [...(refs.get(n.name) ?? []), n]);
        callers.set(n, fn);
      }
    }
    if (n.type === "AssignmentExpression") written(n.left);
    if (n.type === "UpdateExpression") written(n.argument);
    if (n.type === "UnaryExpression" && n.operator === "delete") written(n.argument);
    const inner = FUNCTIONS.has(n.type) ? n : fn;
    for (const k of Object.keys(n)) {
      if (k === "type" || k === "start" || k === "end") continue;
      const v = n[k];
      if (Array.isArray(v)) {
        for (const x of v) if (x && typeof x.type === "string") visit(x, inner, n, k);
      } else if (v && typeof v.type === "string") visit(v, inner, n, k);
    }
  };
  visit(ast, undefined, undefined, "");
  // Candidates: every reference a call inside another function; called from more than one place, only if
  // the copies cost little flash for the JsVars the function takes (4 + its parameters).
  const wanted = new Map<string, { fn: Node; refs: Node[]; sites: Site[] }>();
  for (const [name, fn] of top) {
    const r = refs.get(name) ?? [];
    if (r.length === 0 || keep.has(name) || !inlinable(fn).ok) continue;
    if (r.some((id) => callers.get(id) === undefined || callers.get(id) === fn)) continue;
    if ((r.length - 1) * (fn.end - fn.start) > FLASH_PER_JSVAR * (4 + fn.params.length)) continue;
    wanted.set(name, { fn, refs: r, sites: [] });
  }
  // A hoisted call cannot rebind the caller's names (it sees none of them) nor a top-level name nothing
  // writes; it could change a property, so only properties nothing in the bundle ever writes are stable.
  const st: Stability = {
    isTarget: (c) => c.callee.type === "Identifier" && wanted.has(c.callee.name),
    stable: (e) => {
      if (e.type === "Literal") return true;
      if (e.type === "Identifier") return !topNames.has(e.name) || !assignedNames.has(e.name) || top.has(e.name);
      if (e.type === "UnaryExpression" && (e.operator === "-" || e.operator === "void") && e.argument.type === "Literal") return true;
      if (e.type === "MemberExpression" && !e.computed) return !assignedProps.has(e.property.name) && st.stable(e.object);
      // Operators over stable operands read nothing else and change nothing.
      if (e.type === "BinaryExpression" || e.type === "LogicalExpression") return st.stable(e.left) && st.stable(e.right);
      if (e.type === "UnaryExpression") return e.operator !== "delete" && st.stable(e.argument);
      if (e.type === "ConditionalExpression") return st.stable(e.test) && st.stable(e.consequent) && st.stable(e.alternate);
      return false;
    },
  };
  const found = (site: Site) => {
    wanted.get(site.call.callee.name)!.sites.push(site);
  };
  walk(ast, (n, parent, key) => {
    if (!parent) return;
    if (n.type === "ArrowFunctionExpression" && n.body.type !== "BlockStatement") {
      const call = firstCall(n.body, st);
      if (call) found({ call, node: n, parent, key, kind: "arrow", index: 0 });
      return;
    }
    if (!(inList(parent, key) || ["consequent", "alternate", "body"].includes(key))) return;
    if (n.type === "VariableDeclaration") {
      for (let i = 0; i < n.declarations.length; i++) {
        const init = n.declarations[i].init;
        const call = init ? firstCall(init, st) : undefined;
        if (call) return found({ call, node: n, parent, key, kind: "declaration", index: i });
      }
      return;
    }
    const head = n.type === "ExpressionStatement" ? n.expression : n.type === "ReturnStatement" ? n.argument : n.type === "IfStatement" ? n.test : undefined;
    const call = head ? firstCall(head, st) : undefined;
    if (call) found({ call, node: n, parent, key, kind: "statement", index: 0 });
  });
  // Leaf-first: a candidate whose body calls another candidate waits for the next pass, and so does one
  // whose call sits in text another one moves this pass (its statement, or its caller's own body).
  const within = (outer: Node, inner: Node) => inner.start >= outer.start && inner.end <= outer.end;
  // Every call of a candidate must have a site this pass, or it waits.
  const complete = (c: { refs: Node[]; sites: Site[] }) => c.sites.length === c.refs.length && c.refs.every((id) => c.sites.some((s) => s.call.callee === id));
  const chosen: { fn: Node; site: Site }[] = [];
  const accepted: { fn: Node; sites: Site[] }[] = [];
  for (const c of wanted.values()) {
    if (!complete(c)) continue;
    let callsOther = false;
    walk(c.fn.body, (n) => {
      if (n.type === "CallExpression" && n.callee.type === "Identifier" && wanted.has(n.callee.name) && complete(wanted.get(n.callee.name)!)) callsOther = true;
    });
    if (callsOther) continue;
    const clash = (a: { fn: Node; sites: Site[] }) => c.sites.some((site) => within(a.fn, site.node) || a.sites.some((o) => within(c.fn, o.node) || within(o.node, site.node) || within(site.node, o.node)));
    if (accepted.some(clash) || c.sites.some((x, i) => c.sites.some((y, j) => i !== j && (within(x.node, y.node) || within(y.node, x.node))))) continue;
    accepted.push({ fn: c.fn, sites: c.sites });
    for (const site of c.sites) chosen.push({ fn: c.fn, site });
  }
  const edits: Edit[] = [];
  const fresh = (base: string) => {
    let name: string;
    do name = `${base}_i${counter.n++}`;
    while (identifiers.has(name));
    identifiers.add(name);
    return name;
  };
  // Names a closure assigns: a caller's local among them could change while an inlined body runs.
  const closureWrites = new Map<Node, Set<string>>();
  const writesIn = (caller: Node): Set<string> => {
    if (!closureWrites.has(caller)) {
      const w = new Set<string>();
      walk(caller.body, (n) => {
        if (!FUNCTIONS.has(n.type)) return;
        walk(n, (m) => {
          if (m.type === "AssignmentExpression" && m.left.type === "Identifier") w.add(m.left.name);
          if (m.type === "UpdateExpression" && m.argument.type === "Identifier") w.add(m.argument.name);
        });
        return false;
      });
      closureWrites.set(caller, w);
    }
    return closureWrites.get(caller)!;
  };
  for (const { fn, site } of chosen) {
    const caller = callers.get(site.call.callee);
    const passable = (a: Node) => a.type === "Literal" && !(a as { regex?: unknown }).regex ||
      a.type === "Identifier" && (topNames.has(a.name) ? !assignedNames.has(a.name) : caller !== undefined && !writesIn(caller).has(a.name));
    edits.push(expand(code, fn, site, fresh, passable));
  }
  for (const { fn } of accepted) edits.push({ start: fn.start, end: fn.end, render: () => undefined });
  edits.sort((a, b) => a.start - b.start || a.end - b.end);
  const o = new Out(code);
  emit(o, 0, code.length, edits);
  return { code: o.text, pieces: o.pieces, inlined: accepted.length };
}

/** The edit that writes `fn` out at its call site. */
function expand(code: string, fn: Node, site: Site, fresh: (base: string) => string, passable: (arg: Node) => boolean): Edit {
  const { earlyReturn } = inlinable(fn);
  const rename = new Map<string, string>();
  for (const n of declaredNames(fn)) rename.set(n, fresh(n));
  const { call, node } = site;
  // A parameter the body never assigns, given a literal or a name nothing can change meanwhile, is written
  // as that argument: no copy, so no JsVar for it while the body runs.
  const assignedInBody = new Set<string>();
  walk(fn.body, (n) => {
    if (n.type === "AssignmentExpression" && n.left.type === "Identifier") assignedInBody.add(n.left.name);
    if (n.type === "UpdateExpression" && n.argument.type === "Identifier") assignedInBody.add(n.argument.name);
  });
  const passed = new Set<string>();
  fn.params.forEach((p: Node, i: number) => {
    const a: Node | undefined = call.arguments[i];
    if (a === undefined || assignedInBody.has(p.name) || !passable(a)) return;
    rename.set(p.name, code.slice(a.start, a.end));
    passed.add(p.name);
  });
  const decl = site.kind === "declaration" ? node.declarations[site.index] : undefined;
  const expr = site.kind === "arrow" ? node.body : node.type === "ExpressionStatement" ? node.expression : undefined;
  // Where the result goes: the declared or assigned name itself when the call is the whole value, else a temporary.
  const assign = expr && expr.type === "AssignmentExpression" && expr.operator === "=" && expr.left.type === "Identifier" && expr.right === call ? expr.left.name : undefined;
  const discard = site.kind === "statement" && expr === call;
  const passReturn = (node.type === "ReturnStatement" && node.argument === call) || (site.kind === "arrow" && node.body === call);
  const declName = decl && decl.init === call ? decl.id.name : undefined;
  const result = discard || passReturn ? undefined : assign ?? declName ?? fresh("r");
  const bodyEdits: Edit[] = [];
  walk(fn.body, (n, parent, key) => {
    if (n.type === "Identifier" && rename.has(n.name)) {
      const prop = parent && ((parent.type === "MemberExpression" && key === "property" && !parent.computed) || (parent.type === "Property" && key === "key" && !parent.computed));
      if (prop) return;
      const shorthand = parent && parent.type === "Property" && parent.shorthand;
      bodyEdits.push({ start: n.start, end: n.end, render: (o) => o.lit(shorthand ? `${n.name}:${rename.get(n.name)}` : rename.get(n.name)!) });
    }
    if (n.type === "ReturnStatement" && !passReturn) {
      bodyEdits.push({
        start: n.start, end: n.end, render: (o) => {
          o.lit("{");
          if (n.argument) {
            if (result !== undefined) o.lit(result + "=");
            emit(o, n.argument.start, n.argument.end, bodyEdits);
            o.lit(";");
          }
          o.lit(earlyReturn ? "break;}" : "}");
        },
      });
    }
  });
  bodyEdits.sort((a, b) => a.start - b.start || a.end - b.end);
  const args: Node[] = call.arguments;
  const expansion = (o: Out) => {
    if (result !== undefined && result !== assign) o.lit(`let ${result};`);
    // A block of its own: Espruino frees a block's `let`s at its end only in a loop body, not in a bare block.
    o.lit("do{");
    const copied = fn.params.filter((p: Node) => !passed.has(p.name));
    copied.forEach((p: Node, k: number) => {
      const i = fn.params.indexOf(p);
      o.lit(k === 0 ? "let " : ",");
      o.lit(rename.get(p.name)! + "=");
      if (i < args.length) emit(o, args[i].start, args[i].end, []);
      else o.lit("void 0");
    });
    if (copied.length > 0) o.lit(";");
    for (const extra of args.slice(fn.params.length)) {
      emit(o, extra.start, extra.end, []);
      o.lit(";");
    }
    emit(o, fn.body.start + 1, fn.body.end - 1, bodyEdits);
    if (passReturn) o.lit(";return;");
    o.lit("}while(0);");
  };
  const withCallReplaced = (o: Out, from: number, to: number) => emit(o, from, to, [{ start: call.start, end: call.end, render: (p) => p.lit(result!) }]);
  if (site.kind === "arrow") {
    // `(a) => f(a) + 1` becomes `(a) => { ...; return r + 1; }`; the arrow's head stays.
    const arrowAt = code.lastIndexOf("=>", node.body.start);
    return {
      start: arrowAt + 2, end: node.end, render: (o) => {
        o.lit("{");
        expansion(o);
        if (!passReturn) {
          o.lit("return ");
          withCallReplaced(o, node.body.start, node.body.end);
          o.lit(";");
        }
        o.lit("}");
      },
    };
  }
  const brace = !inList(site.parent, site.key);
  return {
    start: node.start, end: node.end, render: (o) => {
      if (brace) o.lit("{");
      if (decl !== undefined && site.index > 0) {
        // The declarators before the call's, as a declaration of their own.
        o.lit(node.kind + " ");
        emit(o, node.declarations[0].start, node.declarations[site.index - 1].end, []);
        o.lit(";");
      }
      expansion(o);
      if (decl !== undefined) {
        const rest = declName !== undefined ? site.index + 1 : site.index;
        if (rest < node.declarations.length) {
          o.lit(node.kind + " ");
          if (declName !== undefined) emit(o, node.declarations[rest].start, node.declarations[node.declarations.length - 1].end, []);
          else withCallReplaced(o, node.declarations[rest].start, node.declarations[node.declarations.length - 1].end);
          o.lit(";");
        }
      } else if (!discard && !passReturn && assign === undefined) {
        withCallReplaced(o, node.start, node.end);
      }
      if (brace) o.lit("}");
    },
  };
}

/** Unpacks statements, then inlines to a fixed point; the map follows every step. */
export function inlineBundle(code: string, map: RawSourceMap, keep: Set<string> = new Set(), maxPasses = 40): { code: string; map: RawSourceMap; stats: InlineStats } {
  const parse = (c: string) => acorn.parse(c, { ecmaVersion: "latest", sourceType: "script" }) as Node;
  let cur = code;
  let curMap = map;
  const u = unpack(cur, parse(cur));
  curMap = remap(curMap, cur, u.code, u.pieces);
  cur = u.code;
  let inlined = 0;
  let passes = 0;
  const counter = { n: 0 };
  for (; passes < maxPasses; passes++) {
    const r = inlinePass(cur, parse(cur), counter, keep);
    if (r.inlined === 0) break;
    curMap = remap(curMap, cur, r.code, r.pieces);
    cur = r.code;
    inlined += r.inlined;
  }
  return { code: cur, map: curMap, stats: { inlined, passes } };
}
