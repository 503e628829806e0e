// Bundles a firmware entry into one Espruino script that defines a global holding the entry's exports.
//
// Why not esbuild's own `format: "iife", globalName`: its export helper (__copyProps / __toCommonJS) builds
// the export object with getters made in a `for (let k of ...)` loop, and Espruino has one `let` binding per
// loop, not one per iteration, so every export read back as the last one (sesame.probe was toHex). So we
// bundle as ESM, which needs no helper, and turn the final `export{a as b}` into a plain object literal.
import * as acorn from "acorn";
import * as esbuild from "esbuild";
import * as path from "node:path";
import { slimBundle, SlimError } from "./espruino-slim";
import { prependLines, RawSourceMap } from "./sourcemap";

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
   * trivial wrappers written out, top-level names prefixed and unwrapped. For what boards load.
   */
  slim?: boolean;
};

export type EspruinoBundle = { code: string; map: RawSourceMap; exports: string[] };

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
  const bundle = wrapEsm(js.text, JSON.parse(mapFile.text) as RawSourceMap, opts.globalName, opts.entry);
  if (!opts.slim) return bundle;
  try {
    const slim = slimBundle(bundle.code, bundle.map, opts.globalName);
    return { code: slim.code, map: slim.map, exports: bundle.exports };
  } catch (e) {
    if (e instanceof SlimError) throw new BundleError(`${opts.entry}: cannot slim the bundle: ${e.message}`, []);
    throw e;
  }
}

/** Replaces the ESM export statement of a bundle with `var <globalName> = (function(){ ...; return {...}; })();` */
export function wrapEsm(code: string, map: RawSourceMap, globalName: string, entry = "<entry>"): EspruinoBundle {
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
