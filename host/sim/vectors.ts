// The vector files (test/vectors/*.json) and the targets they run on: the TypeScript source in Node, the
// built probe bundle in the Espruino-shaped sandbox, under wasmoon (64-bit Lua) and fengari (32-bit Lua),
// and in a real Espruino interpreter when ESPRUINO_BIN names one. Used by the test suite and `npm start`.
import * as fs from "node:fs";
import * as path from "node:path";
import * as vm from "node:vm";
import { probe, probeInit } from "../../firmware/probe";
import { hostCodec } from "../record/gpcomp";
import type { RawSourceMap } from "../../scripts/lib/sourcemap";
import { loadEspruino } from "./espruino-sandbox";
import { loadFengari, loadWasmoon } from "./lua-runtime";

export type VectorCase = { name: string; op?: string; args?: string[]; out?: string; only?: string[] };
export type VectorFile = { primitive?: string; source?: string; cases: VectorCase[] };
export type Target = "node" | "espruino" | "wasmoon" | "fengari" | "espruino-native";
export type Runner = (op: string, args: string[]) => string;

export const VECTOR_DIR = path.resolve(import.meta.dirname, "../../test/vectors");
export const TARGETS: Target[] = ["node", "espruino", "wasmoon", "fengari", "espruino-native"];
const ALIASES: Record<Target, string[]> = {
  node: ["node"],
  espruino: ["espruino"],
  wasmoon: ["wasmoon", "lua"],
  fengari: ["fengari", "lua"],
  "espruino-native": ["espruino-native", "espruino"],
};

/** Why X25519 cases do not run on fengari: the portable ladder needs 64-bit integers. */
export const FENGARI_X25519 = "x25519 needs 64-bit Lua integers; boards with 32-bit Lua use native sodium";
/** The ladder's own refusal on 32-bit Lua, as a DH handshake case meets it. */
export const INT32_X25519_GUARD = /x25519.*64-bit integers/;

/** What an Espruino probe run starts with: the board's natives for the probe (GPComp's heatshrink). */
export const PROBE_INIT = "sesame.probeInit(require);";

export function pad(args: string[] | undefined): string[] {
  return [...(args ?? []), "", "", "", "", ""].slice(0, 5);
}

export function runsOn(c: VectorCase, t: Target): boolean {
  return c.op !== undefined && (!c.only || c.only.some((o) => ALIASES[t].includes(o)));
}

/** Why a case is pending on a target although it is meant for it. */
export function pendingReason(c: VectorCase, t: Target): string | undefined {
  return t === "fengari" && c.op!.startsWith("x25519") ? FENGARI_X25519 : undefined;
}

export function loadVectorFiles(dir = VECTOR_DIR): { file: string; data?: VectorFile; error?: string }[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      try {
        const data = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as VectorFile;
        if (!Array.isArray(data.cases)) return { file, error: 'no "cases" array' };
        return { file, data };
      } catch (e) {
        return { file, error: (e as Error).message };
      }
    });
}

/** Runs one case, turning a thrown error into a "THROWS ..." result that cannot equal an expected value. */
export function runCase(run: Runner, c: VectorCase): string {
  try {
    return run(c.op!, pad(c.args));
  } catch (e) {
    return `THROWS ${e instanceof Error ? e.message : String(e)}`;
  }
}

export type LoadedTargets = { runners: Map<Target, Runner>; unavailable: Map<Target, string>; close: () => void };

/**
 * Loads the in-process targets from the built probe bundles (`read` gives an artefact's text by its path
 * under dist/). A target that fails to load is reported in `unavailable` with the reason.
 */
export async function loadTargets(read: (artefact: string) => string): Promise<LoadedTargets> {
  const runners = new Map<Target, Runner>();
  const unavailable = new Map<Target, string>();
  const closers: (() => void)[] = [];
  // GPComp's codec: the host's heatshrink in Node, the board's require("heatshrink") in the Espruino targets
  // (PROBE_INIT); the Lua probe has none, which is what its gpcomp vectors check.
  probeInit((name) => (name === "heatshrink" ? hostCodec : undefined));
  runners.set("node", (op, a) => probe(op, a[0], a[1], a[2], a[3], a[4]));
  const attempt = async (t: Target, load: () => Promise<Runner> | Runner) => {
    try {
      runners.set(t, await load());
    } catch (e) {
      unavailable.set(t, (e as Error).message);
    }
  };
  await attempt("espruino", () => {
    const map = JSON.parse(read("espruino/probe.js.map")) as RawSourceMap;
    const sandbox = loadEspruino(read("espruino/probe.js"), { sourceMap: map, filename: "dist/espruino/probe.js" });
    vm.runInContext(PROBE_INIT, sandbox.context);
    return (op, a) => sandbox.call(op, a[0], a[1], a[2], a[3], a[4]);
  });
  await attempt("wasmoon", async () => {
    const w = await loadWasmoon(read("lua/probe.lua"), { chunkName: "probe.lua" });
    closers.push(w.close);
    return (op, a) => w.call(op, a[0], a[1], a[2], a[3], a[4]);
  });
  await attempt("fengari", () => {
    const f = loadFengari(read("lua/probe.lua"), { chunkName: "probe.lua" });
    return (op, a) => f.call(op, a[0], a[1], a[2], a[3], a[4]);
  });
  return { runners, unavailable, close: () => closers.forEach((c) => c()) };
}
