// `npm run build`: the board-independent core and one artefact per board, for Espruino (esbuild) and Lua
// (TypeScriptToLua), each checked for what its target cannot run. `--quiet` prints only errors.
//
//   dist/espruino/core.js (+ .map)   firmware/core.ts, exports in the global `sesame`
//   dist/lua/core.lua                firmware/core.ts, the chunk returns the export table
//   dist/espruino/probe.js, dist/lua/probe.lua   firmware/probe.ts: everything, for the vector suite
//   dist/espruino/endpoints.js, dist/lua/endpoints.lua   firmware/endpoints.ts: every mode and role, for interop
//   dist/espruino/<board>.js         firmware/device.ts with the profile as SESAME_BOARD_JSON (a string) and the
//                                    features it does not use defined false (firmware/features.d.ts)
//   Espruino artefacts but the core are rewritten for fewer JsVars once loaded (scripts/lib/espruino-slim.ts).
//   dist/lua/<board>.lua             firmware/device.ts after a prelude `SESAME_BOARD = { ... }` and the features
//   dist/build.json                  what was built, written only when everything passed
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import type { BoardProfile } from "../firmware/board";
import { checkEspruino, EspruinoProblem, formatProblem } from "./espruino-check";
import { BundleError, bundleEspruino } from "./lib/espruino-bundle";
import { ESPRUINO_MODULES, moduleFile } from "./lib/espruino-modules";
import { mangledProps } from "./lib/espruino-props";
import type { ModuleSpec } from "./lib/espruino-split";
import { bundleLua, LuaBundleError } from "./lib/lua-bundle";
import { toLuaLiteral } from "./lib/lua-table";
import { checkLua, formatLuaProblem } from "./lua-check";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The global that holds the exports of an Espruino artefact. */
export const ESPRUINO_GLOBAL = "sesame";
const CORE_BUDGET_BYTES = 12 * 1024;

/** The build-time features (firmware/features.d.ts) a board's bundle keeps; a bundle that is not a board's keeps all. */
export function boardFeatures(board: BoardProfile | undefined): Record<string, boolean> {
  return {
    SESAME_DH: board === undefined || board.handshake === "dh",
    SESAME_PSK: board === undefined || board.handshake === "psk",
    SESAME_RESPONDER: board === undefined,
    SESAME_PORTABLE_SHA256: board === undefined || !board.nativeCrypto.sha256,
    SESAME_PORTABLE_AES: board === undefined || !board.nativeCrypto.aes,
    SESAME_BLE: board === undefined || board.radios.ble !== undefined,
    SESAME_LORA: board === undefined || board.radios.lora !== undefined,
    SESAME_HOST_RECORDS: board === undefined,
  };
}

function espruinoDefine(board: BoardProfile | undefined): Record<string, string> {
  const d: Record<string, string> = {};
  for (const [k, v] of Object.entries(boardFeatures(board))) d[k] = String(v);
  // A string (esbuild writes it out where it is used; an object it would hoist into a variable): #target builtProfile.
  if (board) d.SESAME_BOARD_JSON = JSON.stringify(JSON.stringify(board));
  return d;
}

function luaPrelude(board: BoardProfile | undefined): string {
  const lines = Object.entries(boardFeatures(board)).map(([k, v]) => `${k} = ${v}`);
  if (board) lines.unshift(`SESAME_BOARD = ${toLuaLiteral(board)}`);
  return lines.join("\n") + "\n";
}

export type BuildOptions = {
  root?: string;
  /** Default: <root>/dist. */
  outDir?: string;
  /** Print only errors. */
  quiet?: boolean;
  log?: (line: string) => void;
};

export type Artefact = {
  target: "espruino" | "lua";
  /** "core" or the board name. */
  name: string;
  file: string;
  bytes: number;
  gzipBytes: number;
  note: string;
};

export type BuildResult = { artefacts: Artefact[]; outDir: string };

export class BuildError extends Error {
  constructor(readonly problems: string[]) {
    super(`build failed: ${problems.length} problem(s)\n` + problems.join("\n"));
  }
}

/** Reads boards/*.json; a profile that cannot drive a build is a problem, not a crash. */
export function loadBoards(root: string, problems: string[] = []): BoardProfile[] {
  const dir = path.join(root, "boards");
  const boards: BoardProfile[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort()) {
    const file = path.join("boards", f);
    let profile: BoardProfile;
    try {
      profile = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as BoardProfile;
    } catch (e) {
      problems.push(`${file}: not valid JSON: ${(e as Error).message}`);
      continue;
    }
    const expected = f.replace(/\.json$/, "");
    if (profile.name !== expected) problems.push(`${file}: "name" is ${JSON.stringify(profile.name)}, expected "${expected}"`);
    else if (profile.target !== "espruino" && profile.target !== "lua")
      problems.push(`${file}: "target" must be "espruino" or "lua", got ${JSON.stringify(profile.target)}`);
    else if (expected === "core" || expected === "probe" || expected === "endpoints") problems.push(`${file}: a board may not be called "${expected}" (an artefact of its own)`);
    else boards.push(profile);
  }
  return boards;
}

/** Every source a build depends on, for "is dist/ stale" checks. */
export function buildInputs(root = REPO_ROOT): string[] {
  const files: string[] = [];
  const walkDir = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walkDir(p);
      else if (/\.(ts|json)$/.test(e.name)) files.push(p);
    }
  };
  walkDir(path.join(root, "firmware"));
  walkDir(path.join(root, "boards"));
  walkDir(path.join(root, "scripts"));
  for (const f of ["package.json", "tsconfig.lua.json"]) files.push(path.join(root, f));
  return files;
}

/** True when dist/build.json is missing or older than any build input. */
export function isBuildStale(root = REPO_ROOT, outDir = path.join(root, "dist")): boolean {
  const stamp = path.join(outDir, "build.json");
  if (!fs.existsSync(stamp)) return true;
  const built = fs.statSync(stamp).mtimeMs;
  return buildInputs(root).some((f) => fs.existsSync(f) && fs.statSync(f).mtimeMs > built);
}

function describeError(artefact: string, e: unknown): string[] {
  if (e instanceof BundleError || e instanceof LuaBundleError) return [`${artefact}: ${e.message}`, ...e.details.map((d) => "  " + d.replace(/\n/g, "\n  "))];
  return [`${artefact}: ${(e as Error).stack ?? String(e)}`];
}

function record(target: Artefact["target"], name: string, file: string, code: string, root: string, note: string): Artefact {
  const bytes = Buffer.byteLength(code);
  return { target, name, file: path.relative(root, file), bytes, gzipBytes: gzipSync(code, { level: 9 }).length, note };
}

async function buildEspruino(name: string, entry: string, outFile: string, root: string, define: Record<string, string> | undefined, problems: string[], note: string, slim = true, modules: ModuleSpec[] = [], mangleProps?: RegExp): Promise<Artefact | undefined> {
  const rel = path.relative(root, outFile);
  try {
    const bundle = await bundleEspruino({ entry, root, outfile: outFile, globalName: ESPRUINO_GLOBAL, define, slim, modules, mangleProps });
    const files = [{ file: outFile, code: bundle.code, map: bundle.map }];
    for (const m of bundle.modules) files.push({ file: moduleFile(path.dirname(outFile), name, m.name), code: m.code, map: m.map });
    for (const f of files) {
      fs.writeFileSync(f.file, f.code);
      fs.writeFileSync(f.file + ".map", JSON.stringify(f.map));
      const frel = path.relative(root, f.file);
      const found: EspruinoProblem[] = checkEspruino(f.code, f.map, { file: frel, mapDir: path.dirname(f.file), root });
      for (const p of found) problems.push(`${frel}: Espruino cannot run: ${formatProblem(p)}`);
    }
    const a = record("espruino", name, outFile, bundle.code, root, note);
    if (bundle.modules.length > 0) a.note += `; modules ${bundle.modules.map((m) => `${m.storageName} ${Buffer.byteLength(m.code)} B`).join(", ")}`;
    return a;
  } catch (e) {
    problems.push(...describeError(rel, e));
    return undefined;
  }
}

function buildLua(name: string, entry: string, outFile: string, root: string, prelude: string | undefined, problems: string[]): Artefact | undefined {
  const rel = path.relative(root, outFile);
  try {
    const bundle = bundleLua({ entry, root, prelude });
    fs.writeFileSync(outFile, bundle.code);
    for (const p of checkLua(bundle.code)) problems.push(`${rel}: 32-bit Lua problem: ${formatLuaProblem(rel, p)}`);
    return record("lua", name, outFile, bundle.code, root, `${bundle.modules.length} modules`);
  } catch (e) {
    problems.push(...describeError(rel, e));
    return undefined;
  }
}

/** Builds and checks every artefact; throws BuildError listing every problem found. */
export async function buildAll(opts: BuildOptions = {}): Promise<BuildResult> {
  const root = path.resolve(opts.root ?? REPO_ROOT);
  const outDir = path.resolve(opts.outDir ?? path.join(root, "dist"));
  const log = opts.log ?? ((line: string) => console.log(line));
  const problems: string[] = [];
  const boards = loadBoards(root, problems);
  const espDir = path.join(outDir, "espruino");
  const luaDir = path.join(outDir, "lua");
  // Start clean so a removed board leaves no stale artefact, and a failed build leaves no stamp.
  fs.rmSync(path.join(outDir, "build.json"), { force: true });
  for (const d of [espDir, luaDir]) {
    fs.rmSync(d, { recursive: true, force: true });
    fs.mkdirSync(d, { recursive: true });
  }
  const artefacts: (Artefact | undefined)[] = [];
  const coreNote = (bytes: number) => `goal < 12 KB for core${bytes > CORE_BUDGET_BYTES ? " (OVER)" : ""}`;
  const all = espruinoDefine(undefined);
  const allLua = luaPrelude(undefined);
  // The core stays as esbuild writes it (its byte size is the figure); every other Espruino artefact is
  // slimmed for JsVars as a board's is (scripts/lib/espruino-slim.ts), so the vector and interop suites
  // run the rewritten code.
  const core = await buildEspruino("core", "firmware/core.ts", path.join(espDir, "core.js"), root, all, problems, "", false);
  if (core) core.note = coreNote(core.bytes);
  artefacts.push(core);
  artefacts.push(buildLua("core", "firmware/core.ts", path.join(luaDir, "core.lua"), root, allLua, problems));
  // The probe bundles carry every primitive, the record layer and both handshakes behind one string entry
  // point: the vector suite runs test/vectors/*.json through them on every target.
  artefacts.push(await buildEspruino("probe", "firmware/probe.ts", path.join(espDir, "probe.js"), root, all, problems, "vector-test bundle"));
  artefacts.push(buildLua("probe", "firmware/probe.ts", path.join(luaDir, "probe.lua"), root, allLua, problems));
  artefacts.push(await buildEspruino("endpoints", "firmware/endpoints.ts", path.join(espDir, "endpoints.js"), root, all, problems, "every mode and role (interop)"));
  artefacts.push(buildLua("endpoints", "firmware/endpoints.ts", path.join(luaDir, "endpoints.lua"), root, allLua, problems));
  const boardProps = mangledProps(root);
  for (const board of boards) {
    if (board.target === "espruino") {
      const note = `board ${board.espruinoBoard ?? "?"}, ${board.memory.jsVars ?? "?"} JsVars, ${board.handshake} only`;
      artefacts.push(await buildEspruino(board.name, "firmware/device.ts", path.join(espDir, board.name + ".js"), root, espruinoDefine(board), problems, note, true, ESPRUINO_MODULES, boardProps));
    } else {
      artefacts.push(buildLua(board.name, "firmware/device.ts", path.join(luaDir, board.name + ".lua"), root, luaPrelude(board), problems));
    }
  }
  const built = artefacts.filter((a): a is Artefact => a !== undefined);
  if (!opts.quiet) log(formatTable(built));
  if (problems.length > 0) throw new BuildError(problems);
  fs.writeFileSync(path.join(outDir, "build.json"), JSON.stringify({ artefacts: built }, null, 2) + "\n");
  return { artefacts: built, outDir };
}

export function formatTable(artefacts: Artefact[]): string {
  const rows = [["artefact", "bytes", "gzip", "note"], ...artefacts.map((a) => [a.file, String(a.bytes), String(a.gzipBytes), a.note])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 1 || i === 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [fmt(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(fmt)].join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const quiet = process.argv.includes("--quiet");
  buildAll({ quiet }).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof BuildError ? e.message : `build failed: ${(e as Error).stack ?? String(e)}`);
      process.exit(1);
    },
  );
}
