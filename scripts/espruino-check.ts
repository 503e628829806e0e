// Static check of a JavaScript artefact against what Espruino 2v29 can run: syntax it cannot parse,
// library pieces it lacks, load-time calls it cannot make (it does not hoist), and closures that would see
// the wrong loop variable (it has no per-iteration `let` bindings). Problems are reported at the original
// TypeScript line through the build's source map.
//
// CLI: tsx scripts/espruino-check.ts file.js [...]   (reads file.js.map or an inline map when present)
import * as acorn from "acorn";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { BUILTIN_CLASSES, EMPTY_PROTOTYPES, MISSING_GLOBALS, MISSING_MEMBERS } from "./lib/espruino-rules";
import { AnyNode, collect, Found, isAncestorOrSelf, owner, ProblemKind, propertyName, Ref, resolve, runsWith, Scope } from "./lib/espruino-walk";
import { RawSourceMap, SourceMapReader } from "./lib/sourcemap";

export type { ProblemKind };

export type EspruinoProblem = {
  construct: string;
  kind: ProblemKind;
  /** The original source file (through the source map), else the artefact. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  snippet: string;
  /** Why it fails on Espruino, where that is not obvious from the construct. */
  detail?: string;
};

export type CheckOptions = {
  /** The artefact's name, reported where the map does not cover a position. */
  file?: string;
  /** The directory the map's `sources` are relative to (default: the artefact's directory, or cwd). */
  mapDir?: string;
  /** Report original files relative to this directory (default: cwd). */
  root?: string;
};

/** Finds the problems in `code`; with a source map they are reported at their original TypeScript lines. */
export function checkEspruino(code: string, sourceMap?: RawSourceMap | string, options: CheckOptions = {}): EspruinoProblem[] {
  const artefact = options.file ?? "<code>";
  let ast: AnyNode;
  try {
    ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "script", locations: true, allowHashBang: true });
  } catch (e) {
    const err = e as SyntaxError & { loc?: { line: number; column: number } };
    const loc = err.loc ?? { line: 1, column: 0 };
    return [{ construct: "parse error: " + err.message, kind: "parse", file: artefact, line: loc.line, column: loc.column + 1, snippet: "" }];
  }
  const { found, refs, members, classes, fnScopes, writes } = collect(ast);
  const add = (node: AnyNode, construct: string, kind: ProblemKind, detail?: string, names?: AnyNode[]) =>
    found.push({ node, construct, kind, detail, names });

  // Library: missing globals, static members and built-in prototypes, where the name is not a local.
  for (const r of refs)
    if (Object.hasOwn(MISSING_GLOBALS, r.id.name) && !resolve(r.id.name, r.scope))
      add(r.id, r.id.name, "library", MISSING_GLOBALS[r.id.name]);
  for (const { node, scope } of members) {
    const prop = propertyName(node);
    const obj = node.object;
    if (prop === undefined) continue;
    if (obj.type === "Identifier" && !resolve(obj.name, scope)) {
      const key = obj.name + "." + prop;
      if (Object.hasOwn(MISSING_MEMBERS, key)) add(node, key, "library", MISSING_MEMBERS[key]);
    } else if (
      obj.type === "MemberExpression" &&
      obj.object.type === "Identifier" &&
      propertyName(obj) === "prototype" &&
      EMPTY_PROTOTYPES.has(obj.object.name) &&
      !resolve(obj.object.name, scope) &&
      !writes.has(node)
    ) {
      add(node, obj.object.name + ".prototype." + prop, "library", "built-in prototypes are empty in Espruino");
    }
  }
  for (const { node, scope } of classes) {
    const sup = node.superClass;
    if (sup.type === "Identifier" && BUILTIN_CLASSES.has(sup.name) && !resolve(sup.name, scope))
      add(node.superClass, "class extends " + sup.name, "syntax", "Espruino cannot subclass built-ins");
  }

  // Hoisting: Espruino defines a function or var when execution reaches its declaration.
  const refsByOwner = new Map<Scope, Ref[]>();
  for (const r of refs) {
    const o = owner(r.scope);
    const list = refsByOwner.get(o);
    if (list) list.push(r);
    else refsByOwner.set(o, [r]);
  }
  for (const r of refs) {
    const res = resolve(r.id.name, r.scope);
    if (!res) continue;
    const { binding, scope } = res;
    if ((binding.kind === "function" || binding.kind === "var") && r.id.start < binding.pos && runsWith(r.scope, scope)) {
      const construct =
        binding.kind === "var"
          ? "var read before declaration"
          : r.isCall
            ? "call before declaration"
            : "function used before declaration";
      add(r.id, construct, "hoisting", "'%0' is declared later in the same scope", [r.id]);
    } else if (r.isCall && binding.fn && r.id.start >= binding.pos && runsWith(r.scope, scope)) {
      // A call that runs now runs its callee's body now: follow it to anything it needs that is not declared yet.
      const seen = new Set<AnyNode>();
      const queue = [binding.fn];
      while (queue.length > 0) {
        const fn = queue.shift();
        if (seen.has(fn)) continue;
        seen.add(fn);
        for (const inner of refsByOwner.get(fnScopes.get(fn) as Scope) ?? []) {
          const ires = resolve(inner.id.name, inner.scope);
          if (!ires) continue;
          const b = ires.binding;
          if ((b.kind === "function" || b.kind === "var") && isAncestorOrSelf(ires.scope, r.scope) && runsWith(r.scope, ires.scope) && b.pos > r.id.start) {
            const what = b.kind === "var" ? "var" : "function";
            add(r.id, "call reaches " + what + " before its declaration", "hoisting", "'%0' uses '%1', declared later", [r.id, inner.id]);
          }
          if (inner.isCall && b.fn) queue.push(b.fn);
        }
      }
    }
    // Closures: one `let` binding per loop in Espruino, so a closure made in the loop sees the last value.
    if (binding.kind === "lexical" && scope.loop && !runsWith(r.scope, scope))
      add(r.id, "closure over loop variable", "closure", "'%0' is one binding for all iterations in Espruino", [r.id]);
  }

  return report(code, found, sourceMap, options, artefact);
}

function report(code: string, found: Found[], sourceMap: RawSourceMap | string | undefined, options: CheckOptions, artefact: string): EspruinoProblem[] {
  const map = sourceMap ?? inlineMap(code);
  const root = options.root ?? process.cwd();
  const reader = map
    ? new SourceMapReader(typeof map === "string" ? (JSON.parse(map) as RawSourceMap) : map, options.mapDir ?? (options.file ? path.dirname(path.resolve(options.file)) : root), root)
    : undefined;
  const lines = code.split("\n");
  const seen = new Set<string>();
  const problems: EspruinoProblem[] = [];
  for (const f of found) {
    const loc = f.node.loc.start;
    const orig = reader?.originalPositionFor(loc.line, loc.column);
    const generated = lines[loc.line - 1] ?? "";
    const snippet = (orig?.lineText ?? generated.slice(Math.max(0, loc.column - 20), loc.column + 60)).trim().slice(0, 120);
    const p: EspruinoProblem = orig
      ? { construct: f.construct, kind: f.kind, file: orig.file, line: orig.line, column: orig.column, snippet }
      : { construct: f.construct, kind: f.kind, file: artefact, line: loc.line, column: loc.column + 1, snippet };
    // Minified names mean nothing to the reader: name identifiers as the TypeScript did.
    const original = (n: AnyNode) => reader?.originalPositionFor(n.loc.start.line, n.loc.start.column)?.name ?? n.name;
    if (f.detail) p.detail = f.detail.replace(/%(\d)/g, (_, i: string) => original(f.names![Number(i)]));
    const key = `${p.construct}|${p.file}|${p.line}|${p.column}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(p);
    }
  }
  return problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
}

function inlineMap(code: string): RawSourceMap | undefined {
  const m = /\/\/# sourceMappingURL=data:application\/json;(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)\s*$/.exec(code);
  return m ? (JSON.parse(Buffer.from(m[1], "base64").toString("utf8")) as RawSourceMap) : undefined;
}

export function formatProblem(p: EspruinoProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.construct}${p.detail ? ` (${p.detail})` : ""}${p.snippet ? `\n    ${p.snippet}` : ""}`;
}

/** Checks an artefact on disk, using `<file>.map` when it exists. */
export function checkEspruinoFile(file: string, root = process.cwd()): EspruinoProblem[] {
  const code = fs.readFileSync(file, "utf8");
  const mapFile = file + ".map";
  const map = fs.existsSync(mapFile) ? fs.readFileSync(mapFile, "utf8") : undefined;
  const rel = path.relative(root, path.resolve(file));
  return checkEspruino(code, map, { file: rel && !rel.startsWith("..") ? rel : file, mapDir: path.dirname(path.resolve(file)), root });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: tsx scripts/espruino-check.ts file.js [...]");
    process.exit(2);
  }
  let failed = false;
  for (const f of files) {
    const problems = checkEspruinoFile(f);
    for (const p of problems) console.log(formatProblem(p));
    if (problems.length > 0) {
      failed = true;
      console.error(`${f}: ${problems.length} construct(s) Espruino cannot run`);
    }
  }
  process.exit(failed ? 1 : 0);
}
