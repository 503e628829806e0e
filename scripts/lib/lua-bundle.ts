// Bundles a firmware entry into one Lua chunk with TypeScriptToLua's programmatic API. The chunk returns the
// entry's export table. Only the entry's import graph is compiled (the tsconfig's `include` would pull in the
// whole repository, tests and the JavaScript targets too).
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import * as tstl from "typescript-to-lua";
import { pruneFalseFeatures } from "./lua-prune";

export type LuaBundleOptions = {
  /** The entry file, absolute or relative to `root`. */
  entry: string;
  root: string;
  /** Default: tsconfig.lua.json in root. */
  tsconfig?: string;
  /** Lua code put before the bundle (e.g. the board profile global). */
  prelude?: string;
  /** The build-time features (firmware/features.d.ts): code behind a false one is dropped (./lua-prune.ts). */
  features?: Record<string, boolean>;
};

export type LuaBundle = { code: string; modules: string[] };

export class LuaBundleError extends Error {
  constructor(
    message: string,
    readonly details: string[],
  ) {
    super(message);
  }
}

/** The module names TSTL gives the files of a bundle: path without extension, dots for slashes. */
export function luaModuleName(root: string, file: string): string {
  return path.relative(root, file).replace(/\.(d\.)?tsx?$/, "").split(path.sep).join(".");
}

/** The modules a bundle defines, from its `["name"] = function(...)` lines. */
export function bundledModules(code: string): string[] {
  const names: string[] = [];
  const re = /^\["([^"]+)"\] = function\(\.\.\.\)/gm;
  for (let m = re.exec(code); m; m = re.exec(code)) names.push(m[1]);
  return names;
}

/** Files that package.json "imports" maps for JavaScript (#target -> js.ts, ...): they must not reach Lua. */
function javascriptOnlyModules(root: string): string[] {
  const pkgFile = path.join(root, "package.json");
  if (!fs.existsSync(pkgFile)) return [];
  const imports = (JSON.parse(fs.readFileSync(pkgFile, "utf8")) as { imports?: Record<string, unknown> }).imports ?? {};
  return Object.values(imports)
    .filter((v): v is string => typeof v === "string")
    .map((v) => luaModuleName(root, path.resolve(root, v)));
}

function formatDiagnostics(root: string, diagnostics: readonly ts.Diagnostic[]): string[] {
  const host: ts.FormatDiagnosticsHost = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => "\n",
  };
  return diagnostics.map((d) => ts.formatDiagnostic(d, host).trim());
}

export function bundleLua(opts: LuaBundleOptions): LuaBundle {
  const root = path.resolve(opts.root);
  const entry = path.resolve(root, opts.entry);
  const configFile = path.resolve(root, opts.tsconfig ?? "tsconfig.lua.json");
  const parsed = tstl.parseConfigFileWithSystem(configFile);
  if (parsed.errors.length > 0) throw new LuaBundleError(`cannot read ${configFile}`, formatDiagnostics(root, parsed.errors));
  const bundleName = "bundle.lua";
  const options: tstl.CompilerOptions = {
    ...parsed.options,
    luaBundle: bundleName,
    luaBundleEntry: entry,
    // Nothing is written: the callback below collects the output, outDir only names it.
    outDir: path.join(root, "dist", ".tstl"),
  };
  let code: string | undefined;
  const emitted: string[] = [];
  // The build-time feature names are declared in a .d.ts that no module imports: give it to the compiler.
  const result = tstl.transpileFiles([entry, path.join(root, "firmware/features.d.ts")], options, (fileName, text) => {
    emitted.push(fileName);
    if (path.basename(fileName) === bundleName) code = text;
  });
  const errors = result.diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) throw new LuaBundleError(`TypeScriptToLua failed on ${opts.entry}`, formatDiagnostics(root, errors));
  if (code === undefined) throw new LuaBundleError(`TypeScriptToLua wrote no bundle for ${opts.entry}`, emitted);
  const modules = bundledModules(code);
  const leaked = modules.filter((m) => javascriptOnlyModules(root).includes(m));
  if (leaked.length > 0)
    throw new LuaBundleError(`${opts.entry}: JavaScript-only modules in the Lua bundle (is tsconfig.lua.json "paths" honoured?)`, leaked);
  const prelude = opts.prelude ? opts.prelude.replace(/\n?$/, "\n") : "";
  return { code: prelude + (opts.features ? pruneFalseFeatures(code, opts.features) : code), modules };
}
