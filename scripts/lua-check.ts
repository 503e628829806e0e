// Static check of a TypeScriptToLua artefact for what breaks on 32-bit-integer Lua (NodeMCU, fengari) or
// cannot work in Lua at all: integer literals above 2^31-1 (floats there), JavaScript globals that TSTL
// passes through (typed arrays, Math.imul as `Math:imul`), float power `^` (from `**` or Math.pow) and
// lualib polyfills of constructs docs/PORTABLE.md rules out. The lualib section is TSTL's own and skipped.
//
// CLI: tsx scripts/lua-check.ts file.lua [...]
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

export type LuaProblem = {
  construct: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** The bundle module ("firmware.crypto.aes") the line belongs to, if any. */
  module?: string;
  snippet: string;
};

export type LuaCheckOptions = {
  /** Modules not checked at all. Default: TSTL's lualib. */
  trustedModules?: string[];
  /** Big literals allowed in a module, by module name (none are needed today). */
  allowedLiterals?: Record<string, string[]>;
};

const DEFAULT_OPTIONS: Required<LuaCheckOptions> = {
  trustedModules: ["lualib_bundle"],
  allowedLiterals: {},
};

const JS_ONLY_NAMES = new Set([
  "Uint8Array", "Int8Array", "Uint8ClampedArray", "Uint16Array", "Int16Array", "Uint32Array", "Int32Array",
  "Float32Array", "Float64Array", "ArrayBuffer", "DataView", "BigInt",
]);
const TYPED_ARRAYS = new Set([...JS_ONLY_NAMES].filter((n) => n.endsWith("Array")));

/** lualib polyfills whose presence means the TypeScript used something PORTABLE.md forbids. */
const FORBIDDEN_LUALIB = new Set(["Map", "Set", "WeakMap", "WeakSet", "__TS__Symbol", "__TS__SymbolRegistryFor",
  "__TS__Generator", "__TS__AsyncAwaiter", "__TS__Await", "__TS__ArrayFrom", "__TS__ObjectFreeze"]);

const INT32_MAX = 2147483647n;
const MODULE_HEADER = /^\["([^"]+)"\] = function\(\.\.\.\)/;

type Token = { kind: "name" | "number" | "op"; text: string; line: number; column: number };

/** Tokens outside strings and comments, with each line's module. */
function tokenize(code: string): { tokens: Token[]; moduleOfLine: (string | undefined)[] } {
  const tokens: Token[] = [];
  const moduleOfLine: (string | undefined)[] = [undefined];
  let line = 1;
  let lineStart = 0;
  let module: string | undefined;
  const newline = (at: number) => {
    line++;
    lineStart = at + 1;
    const header = MODULE_HEADER.exec(code.slice(lineStart, lineStart + 200));
    if (header) module = header[1];
    moduleOfLine[line] = module;
  };
  moduleOfLine[1] = MODULE_HEADER.exec(code)?.[1];
  module = moduleOfLine[1];
  // Skips a long bracket [==[ ... ]==] starting at i; returns the index after it.
  const longBracket = (i: number): number => {
    const open = /^\[(=*)\[/.exec(code.slice(i, i + 64));
    if (!open) return -1;
    const close = "]" + open[1] + "]";
    const end = code.indexOf(close, i + open[0].length);
    const stop = end < 0 ? code.length : end + close.length;
    for (let k = i; k < stop; k++) if (code[k] === "\n") newline(k);
    return stop;
  };
  let i = 0;
  while (i < code.length) {
    const ch = code[i];
    if (ch === "\n") {
      newline(i);
      i++;
    } else if (ch === " " || ch === "\t" || ch === "\r") {
      i++;
    } else if (code.startsWith("--", i)) {
      const after = longBracket(i + 2);
      if (after >= 0) i = after;
      else while (i < code.length && code[i] !== "\n") i++;
    } else if (ch === "[" && /^\[=*\[/.test(code.slice(i, i + 64))) {
      i = longBracket(i);
    } else if (ch === '"' || ch === "'") {
      i++;
      while (i < code.length && code[i] !== ch) {
        if (code[i] === "\\") i++;
        if (code[i] === "\n") newline(i);
        i++;
      }
      i++;
    } else if (/[0-9]/.test(ch) || (ch === "." && /[0-9]/.test(code[i + 1] ?? ""))) {
      const m = /^(0[xX][0-9a-fA-F]*(\.[0-9a-fA-F]*)?([pP][+-]?[0-9]+)?|[0-9]*(\.[0-9]*)?([eE][+-]?[0-9]+)?)/.exec(code.slice(i, i + 100));
      const text = m && m[0].length > 0 ? m[0] : ch;
      tokens.push({ kind: "number", text, line, column: i - lineStart + 1 });
      i += text.length;
    } else if (/[A-Za-z_]/.test(ch)) {
      const text = /^[A-Za-z_][A-Za-z0-9_]*/.exec(code.slice(i, i + 200))![0];
      tokens.push({ kind: "name", text, line, column: i - lineStart + 1 });
      i += text.length;
    } else {
      tokens.push({ kind: "op", text: ch, line, column: i - lineStart + 1 });
      i++;
    }
  }
  return { tokens, moduleOfLine };
}

function integerValue(text: string): bigint | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) return BigInt(text);
  if (/^[0-9]+$/.test(text)) return BigInt(text);
  return undefined; // a float literal
}

export function checkLua(code: string, options: LuaCheckOptions = {}): LuaProblem[] {
  const trusted = new Set(options.trustedModules ?? DEFAULT_OPTIONS.trustedModules);
  const allowed = options.allowedLiterals ?? DEFAULT_OPTIONS.allowedLiterals;
  const lines = code.split("\n");
  const { tokens, moduleOfLine } = tokenize(code);
  const problems: LuaProblem[] = [];
  const add = (t: Token, construct: string) => {
    const module = moduleOfLine[t.line];
    problems.push({ construct, line: t.line, column: t.column, ...(module ? { module } : {}), snippet: (lines[t.line - 1] ?? "").trim().slice(0, 120) });
  };
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    const module = moduleOfLine[t.line];
    if (module !== undefined && trusted.has(module)) continue;
    if (t.kind === "number") {
      const value = integerValue(t.text);
      if (value === undefined || value <= INT32_MAX) continue;
      if (module !== undefined && (allowed[module] ?? []).includes(t.text)) continue;
      add(t, t.text.startsWith("0x") || t.text.startsWith("0X")
        ? `integer literal ${t.text} above 0x7FFFFFFF (wraps on 32-bit Lua)`
        : `integer literal ${t.text} above 2147483647 (a float on 32-bit Lua)`);
    } else if (t.kind === "name") {
      const prev = tokens[k - 1];
      const prev2 = tokens[k - 2];
      // A field name (x.Uint8Array, x:f, { Uint8Array = ... }) is not a reference to the JavaScript global.
      if (prev && (prev.text === "." || prev.text === ":")) continue;
      const isKey = (prev?.text === "{" || prev?.text === ",") && tokens[k + 1]?.text === "=" && tokens[k + 2]?.text !== "=";
      if (isKey) continue;
      if (JS_ONLY_NAMES.has(t.text)) {
        const viaNew = prev?.text === "(" && prev2?.text === "__TS__New";
        add(t, viaNew && TYPED_ARRAYS.has(t.text) ? `__TS__New of a typed array (${t.text})` : `reference to ${t.text} (JavaScript only)`);
      } else if (t.text === "Math" && (tokens[k + 1]?.text === "." || tokens[k + 1]?.text === ":")) {
        add(t, `Math.${tokens[k + 2]?.text ?? "?"} (no Lua equivalent; Math.imul/clz32 are rejected by TSTL)`);
      } else if (FORBIDDEN_LUALIB.has(t.text) && prev?.text !== "local") {
        add(t, `lualib polyfill ${t.text} (not portable, see docs/PORTABLE.md)`);
      }
    } else if (t.text === "^") {
      add(t, "float power ^ (from ** or Math.pow)");
    }
  }
  return problems;
}

export function formatLuaProblem(file: string, p: LuaProblem): string {
  return `${file}:${p.line}:${p.column}: ${p.construct}${p.module ? ` [module ${p.module}]` : ""}\n    ${p.snippet}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: tsx scripts/lua-check.ts file.lua [...]");
    process.exit(2);
  }
  let failed = false;
  for (const f of files) {
    const problems = checkLua(fs.readFileSync(f, "utf8"));
    for (const p of problems) console.log(formatLuaProblem(f, p));
    if (problems.length > 0) failed = true;
  }
  process.exit(failed ? 1 : 0);
}
