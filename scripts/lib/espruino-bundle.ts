// Bundles a firmware entry into one Espruino script that defines a global holding the entry's exports.
//
// Why not esbuild's own `format: "iife", globalName`: its export helper (__copyProps / __toCommonJS) builds
// the export object with getters made in a `for (let k of ...)` loop, and Espruino has one `let` binding per
// loop, not one per iteration, so every export read back as the last one (sesame.probe was toHex). So we
// bundle as ESM, which needs no helper, and turn the final `export{a as b}` into a plain object literal.
import * as acorn from "acorn";
import * as esbuild from "esbuild";
import * as path from "node:path";
import { inlineBundle } from "./espruino-inline";
import { ModuleSpec, splitBundle } from "./espruino-split";
import { slimBundle, SlimError } from "./espruino-slim";
import { decodeMappings, prependLines, RawSourceMap } from "./sourcemap";

export type EspruinoBundleOptions = {
  /** The entry file, absolute or relative to `root`. */
  entry: string;
  /** The repository root: esbuild resolves package.json "imports" (#target, #hw) from here. */
  root: string;
  /** Where the artefact will be written: the map's `sources` are relative to its directory. */
  outfile: string;
  /** The global the exports are assigned to. */
  globalName: string;
  /** esbuild `define`: identifier -> JavaScript expression text. */
  define?: Record<string, string>;
  /**
   * Rewrites the bundle to take fewer JsVars once loaded (scripts/lib/espruino-slim.ts): constants inlined,
   * trivial wrappers written out, top-level names prefixed and unwrapped, functions called from one place
   * written out there (scripts/lib/espruino-inline.ts). For what boards load.
   */
  slim?: boolean;
  /** With `slim`: the modules to move out of the bundle into Storage files of their own (scripts/lib/espruino-split.ts). */
  modules?: ModuleSpec[];
  /** esbuild `mangleProps`: the property names to shorten (scripts/lib/espruino-props.ts). */
  mangleProps?: RegExp;
};

export type EspruinoModule = { name: string; storageName: string; code: string; map: RawSourceMap; functions: string[] };
export type EspruinoBundle = { code: string; map: RawSourceMap; exports: string[]; modules: EspruinoModule[] };

/** esbuild's target: ES2017 keeps let/const/arrows/classes and lowers `?.`, `??`, object spread and class fields. */
export const ESPRUINO_ESBUILD_TARGET = "es2017";

export class BundleError extends Error {
  constructor(
    message: string,
    readonly details: string[],
  ) {
    super(message);
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export async function bundleEspruino(opts: EspruinoBundleOptions): Promise<EspruinoBundle> {
  let result: esbuild.BuildResult<{ write: false }>;
  try {
    result = await esbuild.build({
      absWorkingDir: opts.root,
      entryPoints: [path.resolve(opts.root, opts.entry)],
      outfile: opts.outfile,
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: ESPRUINO_ESBUILD_TARGET,
      minify: true,
      sourcemap: "external",
      sourcesContent: true,
      legalComments: "none",
      charset: "ascii",
      define: opts.define,
      mangleProps: opts.mangleProps,
      write: false,
      logLevel: "silent",
    });
  } catch (e) {
    const failure = e as esbuild.BuildFailure;
    const messages = failure.errors
      ? await esbuild.formatMessages(failure.errors, { kind: "error", color: false })
      : [String(e)];
    throw new BundleError(`esbuild failed on ${opts.entry}`, messages.map((m) => m.trim()));
  }
  const js = result.outputFiles.find((f) => f.path.endsWith(".js"));
  const mapFile = result.outputFiles.find((f) => f.path.endsWith(".map"));
  if (!js || !mapFile) throw new BundleError(`esbuild wrote no output for ${opts.entry}`, []);
  const esmMap = JSON.parse(mapFile.text) as RawSourceMap;
  const bundle = wrapEsm(js.text, esmMap, opts.globalName, opts.entry);
  if (!opts.slim) return { ...bundle, modules: [] };
  let slim;
  try {
    slim = slimBundle(bundle.code, bundle.map, opts.globalName);
  } catch (e) {
    if (e instanceof SlimError) throw new BundleError(`${opts.entry}: cannot slim the bundle: ${e.message}`, []);
    throw e;
  }
  const names = new Map<string, string>();
  for (const [name, ts] of functionNames(js.text, esmMap, path.dirname(path.resolve(opts.root, opts.outfile)), opts.root)) names.set(slim.stats.prefix + name, ts);
  // A module's roots stay functions: written out into their callers, they would take the module with them.
  const roots = new Set((opts.modules ?? []).flatMap((m) => m.roots));
  const inlined = inlineBundle(slim.code, slim.map, new Set([...names].filter(([, ts]) => roots.has(ts)).map(([name]) => name)));
  // Minified first, so that calls in code the minifier finds dead do not tie functions to a phase.
  const pre = await minifyAgain(inlined.code, inlined.map, opts.entry);
  const split = splitBundle(pre.code, pre.map, names, opts.modules ?? []);
  const min = await minifyAgain(split.code, split.map, opts.entry);
  const modules: EspruinoModule[] = [];
  for (const m of split.modules) {
    const mm = await minifyAgain(m.code, m.map, opts.entry);
    modules.push({ ...m, code: mm.code, map: mm.map });
  }
  return { code: min.code, map: min.map, exports: bundle.exports, modules };
}

/** The TypeScript "file:name" of each top-level function of esbuild's output, by its name there (from the map's names). */
export function functionNames(code: string, map: RawSourceMap, mapDir: string, root: string): Map<string, string> {
  const ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "module" }) as unknown as { body: { type: string; id?: { name: string; start: number } }[] };
  const lines = decodeMappings(map.mappings);
  const starts = [0];
  for (let i = 0; i < code.length; i++) if (code.charCodeAt(i) === 10) starts.push(i + 1);
  const out = new Map<string, string>();
  for (const s of ast.body) {
    if (s.type !== "FunctionDeclaration" || !s.id) continue;
    let line = 0;
    while (line + 1 < starts.length && starts[line + 1] <= s.id.start) line++;
    const seg = (lines[line] ?? []).find((g) => g[0] === s.id!.start - starts[line]);
    if (!seg || seg[4] < 0 || !map.names) continue;
    const file = path.relative(root, path.resolve(mapDir, map.sources[seg[1]])).split(path.sep).join("/");
    out.set(s.id.name, `${file}:${map.names[seg[4]]}`);
  }
  return out;
}

/** esbuild once more over rewritten code (names stay: the top level is the global scope), the map carried through. */
async function minifyAgain(code: string, map: RawSourceMap, entry: string): Promise<{ code: string; map: RawSourceMap }> {
  const input = code + "\n//# sourceMappingURL=data:application/json;base64," + Buffer.from(JSON.stringify(map)).toString("base64");
  try {
    const r = await esbuild.transform(input, { loader: "js", minify: true, target: ESPRUINO_ESBUILD_TARGET, charset: "ascii", legalComments: "none", sourcemap: "external", sourcefile: path.basename(entry) });
    return { code: r.code, map: JSON.parse(r.map) as RawSourceMap };
  } catch (e) {
    throw new BundleError(`${entry}: esbuild failed on the rewritten bundle`, [String(e)]);
  }
}

/** Replaces the ESM export statement of a bundle with `var <globalName> = (function(){ ...; return {...}; })();` */
export function wrapEsm(code: string, map: RawSourceMap, globalName: string, entry = "<entry>"): Omit<EspruinoBundle, "modules"> {
  const ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "module" }) as unknown as {
    body: { type: string; start: number; end: number; declaration?: unknown; source?: unknown; specifiers?: { local: { name?: string; value?: string }; exported: { name?: string; value?: string } }[] }[];
  };
  const props: string[] = [];
  const exports: string[] = [];
  const cuts: { start: number; end: number }[] = [];
  for (const stmt of ast.body) {
    if (stmt.type === "ImportDeclaration")
      throw new BundleError(`${entry}: the bundle still imports a module`, [code.slice(stmt.start, stmt.end)]);
    if (stmt.type === "ExportDefaultDeclaration" || stmt.type === "ExportAllDeclaration" || (stmt.type === "ExportNamedDeclaration" && (stmt.declaration || stmt.source)))
      throw new BundleError(`${entry}: unexpected export form in the esbuild output`, [code.slice(stmt.start, stmt.end)]);
    if (stmt.type !== "ExportNamedDeclaration") continue;
    for (const s of stmt.specifiers ?? []) {
      const local = s.local.name ?? String(s.local.value);
      const exported = s.exported.name ?? String(s.exported.value);
      exports.push(exported);
      props.push((IDENTIFIER.test(exported) ? exported : JSON.stringify(exported)) + ":" + local);
    }
    cuts.push({ start: stmt.start, end: stmt.end });
  }
  let body = code;
  for (const cut of cuts.reverse()) body = body.slice(0, cut.start) + body.slice(cut.end);
  // The prefix sits on its own line, so the map only shifts down by one line.
  const wrapped = `var ${globalName}=(function(){\n${body.replace(/\s+$/, "")}\nreturn{${props.join(",")}};})();\n`;
  return { code: wrapped, map: prependLines(map, 1), exports };
}
