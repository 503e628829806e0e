// The scope-aware walk behind scripts/espruino-check.ts: one pass over the acorn AST that records the
// constructs Espruino cannot parse, every scope with its declarations (function, var, let/const, params),
// and every identifier reference, so the checker can then resolve names (is `Map` a local or the missing
// global?) and find load-time uses of functions and vars declared further down.
import * as walk from "acorn-walk";
import { MISSING_METHODS, SYNC_CALLBACK_METHODS } from "./espruino-rules";

/** syntax: the parser rejects it; library: missing at run time; hoisting/closure: runs but goes wrong. */
export type ProblemKind = "parse" | "syntax" | "library" | "hoisting" | "closure";

// acorn's ESTree nodes are read structurally below; their union type adds nothing but casts.
export type AnyNode = any;
type Visitor = (node: AnyNode, st: WalkState, c: (node: AnyNode, st: WalkState, override?: string) => void) => void;
const base = walk.base as unknown as Record<string, Visitor>;

export type Binding = { kind: "function" | "var" | "lexical" | "param"; pos: number; fn?: AnyNode };
export type Scope = {
  kind: "function" | "block";
  parent?: Scope;
  names: Map<string, Binding>;
  /** Runs when its parent runs: blocks, IIFEs and callbacks of forEach/map/... */
  inPlace: boolean;
  /** A for/for-in/for-of head: its let/const are one binding for all iterations in Espruino. */
  loop: boolean;
};
export type Ref = { id: AnyNode; scope: Scope; isCall: boolean };
type WalkState = { scope: Scope; inPattern: boolean };
/** `detail` may name identifiers as %0, %1...: `names` holds their nodes, reported by their original names. */
export type Found = { node: AnyNode; construct: string; kind: ProblemKind; detail?: string; names?: AnyNode[] };

const FUNCTION_TYPES = new Set(["FunctionExpression", "ArrowFunctionExpression"]);

export function propertyName(member: AnyNode): string | undefined {
  if (!member.computed && member.property.type === "Identifier") return member.property.name;
  if (member.computed && member.property.type === "Literal" && typeof member.property.value === "string")
    return member.property.value;
  return undefined;
}

function patternNames(p: AnyNode, out: AnyNode[] = []): AnyNode[] {
  if (!p) return out;
  if (p.type === "Identifier") out.push(p);
  else if (p.type === "ObjectPattern") for (const q of p.properties) patternNames(q.type === "RestElement" ? q : q.value, out);
  else if (p.type === "ArrayPattern") for (const q of p.elements) patternNames(q, out);
  else if (p.type === "AssignmentPattern") patternNames(p.left, out);
  else if (p.type === "RestElement") patternNames(p.argument, out);
  return out;
}

function newScope(kind: Scope["kind"], parent: Scope | undefined, inPlace: boolean, loop = false): Scope {
  return { kind, parent, names: new Map(), inPlace, loop };
}

function declare(scope: Scope, name: string, binding: Binding): void {
  if (!scope.names.has(name)) scope.names.set(name, binding); // a re-declaration keeps the first position
}

function functionScope(scope: Scope): Scope {
  let s = scope;
  while (s.kind === "block" && s.parent) s = s.parent;
  return s;
}

export function resolve(name: string, scope: Scope): { binding: Binding; scope: Scope } | undefined {
  for (let s: Scope | undefined = scope; s; s = s.parent) {
    const b = s.names.get(name);
    if (b) return { binding: b, scope: s };
  }
  return undefined;
}

/** True if code in `from` runs when `to` (an ancestor or itself) runs, i.e. nothing in between is deferred. */
export function runsWith(from: Scope, to: Scope): boolean {
  for (let s: Scope | undefined = from; s && s !== to; s = s.parent) if (!s.inPlace) return false;
  return true;
}

export function isAncestorOrSelf(anc: Scope, s: Scope | undefined): boolean {
  for (; s; s = s.parent) if (s === anc) return true;
  return false;
}

/** The scope whose call runs this code: the nearest enclosing function that is not run in place. */
export function owner(scope: Scope): Scope {
  let s = scope;
  while (s.inPlace && s.parent) s = s.parent;
  return s;
}

/** Parses and collects everything that needs no name resolution, plus the scopes and references for the rest. */
export function collect(ast: AnyNode) {
  const found: Found[] = [];
  const refs: Ref[] = [];
  const members: { node: AnyNode; scope: Scope }[] = [];
  const classes: { node: AnyNode; scope: Scope }[] = [];
  const fnScopes = new Map<AnyNode, Scope>();
  const inPlaceFns = new Set<AnyNode>();
  const callees = new Set<AnyNode>();
  const writes = new Set<AnyNode>();
  const functionBodies = new Set<AnyNode>();
  const add = (node: AnyNode, construct: string, kind: ProblemKind = "syntax", detail?: string) =>
    found.push({ node, construct, kind, detail });
  const blockScoped: Visitor = (node, st, c) => base[node.type](node, { ...st, scope: newScope("block", st.scope, true) }, c);

  const visitors: Record<string, Visitor> = {
    Function(node, st, c) {
      if (node.generator) add(node, "generator function");
      if (node.async) add(node, "async function");
      if (node.type === "FunctionDeclaration" && node.id)
        declare(st.scope, node.id.name, { kind: "function", pos: node.start, fn: node });
      const scope = newScope("function", st.scope, inPlaceFns.has(node));
      fnScopes.set(node, scope);
      if (node.type === "FunctionExpression" && node.id) declare(scope, node.id.name, { kind: "param", pos: -1 });
      for (const p of node.params) for (const id of patternNames(p)) declare(scope, id.name, { kind: "param", pos: -1 });
      const inner = { scope, inPattern: false };
      for (const p of node.params) c(p, inner, "Pattern");
      if (!node.expression) functionBodies.add(node.body);
      c(node.body, inner, node.expression ? "Expression" : "Statement");
    },
    BlockStatement(node, st, c) {
      if (functionBodies.has(node)) base.BlockStatement(node, st, c);
      else blockScoped(node, st, c);
    },
    SwitchStatement: blockScoped,
    StaticBlock: blockScoped,
    ForStatement(node, st, c) {
      base.ForStatement(node, { ...st, scope: newScope("block", st.scope, true, true) }, c);
    },
    ForInStatement(node, st, c) {
      base.ForInStatement(node, { ...st, scope: newScope("block", st.scope, true, true) }, c);
    },
    ForOfStatement(node, st, c) {
      if (node.await) add(node, "for await");
      base.ForOfStatement(node, { ...st, scope: newScope("block", st.scope, true, true) }, c);
    },
    CatchClause(node, st, c) {
      const scope = newScope("block", st.scope, true);
      for (const id of patternNames(node.param)) declare(scope, id.name, { kind: "param", pos: -1 });
      base.CatchClause(node, { ...st, scope }, c);
    },
    VariableDeclaration(node, st, c) {
      for (const d of node.declarations) {
        const fn = d.init && FUNCTION_TYPES.has(d.init.type) ? d.init : undefined;
        for (const id of patternNames(d.id)) {
          if (node.kind === "var") declare(functionScope(st.scope), id.name, { kind: "var", pos: id.start, fn });
          else declare(st.scope, id.name, { kind: "lexical", pos: id.start, fn });
        }
      }
      base.VariableDeclaration(node, st, c);
    },
    Class(node, st, c) {
      if (node.type === "ClassDeclaration" && node.id) declare(st.scope, node.id.name, { kind: "lexical", pos: node.start });
      if (node.superClass) classes.push({ node, scope: st.scope });
      base.Class(node, st, c);
    },
    CallExpression(node, st, c) {
      const callee = node.callee;
      if (callee.type === "Identifier") callees.add(callee);
      // IIFEs, `(function(){}).call(this)`, and callbacks that forEach/map/... run before returning.
      if (FUNCTION_TYPES.has(callee.type)) inPlaceFns.add(callee);
      if (callee.type === "MemberExpression") {
        const name = propertyName(callee);
        if ((name === "call" || name === "apply") && FUNCTION_TYPES.has(callee.object.type)) inPlaceFns.add(callee.object);
        if (name !== undefined && SYNC_CALLBACK_METHODS.has(name))
          for (const a of node.arguments) if (FUNCTION_TYPES.has(a.type)) inPlaceFns.add(a);
        if (name !== undefined && !callee.computed && Object.hasOwn(MISSING_METHODS, name))
          add(callee.property, "." + name + "()", "library", MISSING_METHODS[name]);
      }
      base.CallExpression(node, st, c);
    },
    UnaryExpression(node, st, c) {
      // `typeof X` is how code tests for a missing global, and never throws: not a use of X.
      if (node.operator === "typeof" && node.argument.type === "Identifier") return;
      base.UnaryExpression(node, st, c);
    },
    NewExpression(node, st, c) {
      if (node.callee.type === "Identifier") callees.add(node.callee);
      base.NewExpression(node, st, c);
    },
    Identifier(node, st) {
      refs.push({ id: node, scope: st.scope, isCall: callees.has(node) });
    },
    MemberExpression(node, st, c) {
      members.push({ node, scope: st.scope });
      base.MemberExpression(node, st, c);
    },
    MemberPattern(node, st, c) {
      writes.add(node);
      c(node, st);
    },
    ObjectPattern(node, st, c) {
      if (!st.inPattern) add(node, "destructuring");
      base.ObjectPattern(node, { ...st, inPattern: true }, c);
    },
    ArrayPattern(node, st, c) {
      if (!st.inPattern) add(node, "destructuring");
      base.ArrayPattern(node, { ...st, inPattern: true }, c);
    },
    RestElement(node, st, c) {
      if (!st.inPattern) add(node.argument, "rest parameter");
      base.RestElement(node, st, c);
    },
    AssignmentPattern(node, st, c) {
      if (!st.inPattern) add(node.left, "default parameter");
      base.AssignmentPattern(node, st, c);
    },
    SpreadElement(node, st, c) {
      add(node, "spread");
      base.SpreadElement(node, st, c);
    },
    ChainExpression(node, st, c) {
      add(node, "optional chaining");
      base.ChainExpression(node, st, c);
    },
    AwaitExpression(node, st, c) {
      add(node, "await");
      base.AwaitExpression(node, st, c);
    },
    BinaryExpression(node, st, c) {
      if (node.operator === "**") add(node, "exponentiation (**)");
      base.BinaryExpression(node, st, c);
    },
    AssignmentExpression(node, st, c) {
      if (node.operator === "**=") add(node, "exponentiation (**)");
      base.AssignmentExpression(node, st, c);
    },
    Literal(node) {
      if (node.bigint !== undefined) add(node, "BigInt literal");
    },
    LabeledStatement(node, st, c) {
      add(node, "labelled statement");
      base.LabeledStatement(node, st, c);
    },
    Property(node, st, c) {
      if (node.computed) add(node.key, "computed key");
      base.Property(node, st, c);
    },
    MethodDefinition(node, st, c) {
      if (node.computed) add(node.key, "computed key");
      base.MethodDefinition(node, st, c);
    },
    PropertyDefinition(node, st, c) {
      if (node.computed) add(node.key, "computed key");
      base.PropertyDefinition(node, st, c);
    },
    ImportExpression(node, st, c) {
      add(node, "dynamic import");
      base.ImportExpression(node, st, c);
    },
  };
  const program = newScope("function", undefined, true);
  walk.recursive(ast, { scope: program, inPattern: false }, visitors as unknown as walk.RecursiveVisitors<WalkState>);
  return { found, refs, members, classes, fnScopes, writes };
}
