// Runs a Lua artefact (dist/lua/*.lua) under wasmoon (Lua 5.4, 64-bit integers, like desktop Lua) and
// fengari (Lua 5.3 with 32-bit integers, like NodeMCU's default build). The chunk's return value, the
// export table, is kept in the global `sesame`; calls go through a Lua wrapper that catches errors and
// hands back a tagged string, so a Lua error becomes a JS exception carrying the Lua message.
//
// Optional NodeMCU-like globals (opts.nodemcu): `crypto.hash(algo, data)`, `crypto.hmac(algo, data, key)`
// and `sodium.random.random()`, `sodium.crypto_scalarmult(n, p)` — the shapes firmware/hw/nodemcu.ts
// expects (crypto_scalarmult is the sesame image's addition to NodeMCU's sodium module). Byte strings
// cross the JS/Lua boundary as hex, because both runtimes convert JS strings to Lua as UTF-8.
import * as crypto from "node:crypto";
import { createRequire } from "node:module";
import { LuaFactory } from "wasmoon";

export type LuaRuntimeOptions = {
  /** Install the NodeMCU-like `crypto` and `sodium` globals. */
  nodemcu?: boolean;
  /** Chunk name in Lua error messages. */
  chunkName?: string;
  /** sodium.random.random(): a signed 32-bit value; the CSPRNG by default (a simulated board's is seeded). */
  random?: () => number;
};

export type LuaRuntime = {
  call(op: string, a?: string, b?: string, c?: string, d?: string, e?: string): string;
  /** Runs a Lua statement list (for tests), returning its first result as a string. */
  eval(lua: string): string;
};

export class LuaError extends Error {
  constructor(
    message: string,
    readonly luaTraceback?: string,
  ) {
    super(message);
    this.name = "LuaError";
  }
}

// Loads the artefact, then defines the call wrapper: "S" .. result on success, "E" .. message on error.
const PRELUDE = `
local function fromhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local function tohex(s) return (s:gsub(".", function(c) return string.format("%02x", string.byte(c)) end)) end
__sesame_hex = { fromhex = fromhex, tohex = tohex }
function __sesame_load(src, name)
  local chunk, err = load(src, "=" .. name)
  if not chunk then error(err, 0) end
  sesame = chunk()
end
function __sesame_call(op, a, b, c, d, e)
  local trace
  local ok, r = xpcall(sesame.probe, function(m) trace = debug.traceback(); return m end, op, a, b, c, d, e)
  if not ok then return "E" .. tostring(r) .. "\\31" .. tostring(trace) end
  if type(r) ~= "string" then return "Eprobe returned a " .. type(r) .. ", not a string\\31" end
  return "S" .. r
end
function __sesame_eval(src)
  local chunk, err = load(src, "=eval")
  if not chunk then return "E" .. err .. "\\31" end
  local ok, r = pcall(chunk)
  if not ok then return "E" .. tostring(r) .. "\\31" end
  return "S" .. tostring(r)
end
`;

// Lua-side NodeMCU globals over JS functions that take and return hex (__js_* are set by the runtime).
const NODEMCU_PRELUDE = `
local h = __sesame_hex
crypto = {
  hash = function(algo, data) return h.fromhex(__js_hash(algo, h.tohex(data))) end,
  hmac = function(algo, data, key) return h.fromhex(__js_hmac(algo, h.tohex(data), h.tohex(key))) end,
}
sodium = {
  random = { random = function() return __js_random() end },
  crypto_scalarmult = function(n, p) return h.fromhex(__js_scalarmult(h.tohex(n), h.tohex(p))) end,
}
`;

/** The JS side of the NodeMCU globals: hex in, hex out. */
const NODEMCU_JS = {
  __js_hash: (algo: string, hex: string) => crypto.createHash(algo.toLowerCase()).update(Buffer.from(hex, "hex")).digest("hex"),
  __js_hmac: (algo: string, hex: string, key: string) =>
    crypto.createHmac(algo.toLowerCase(), Buffer.from(key, "hex")).update(Buffer.from(hex, "hex")).digest("hex"),
  // A signed 32-bit value: what NodeMCU returns on an integer build.
  __js_random: () => crypto.randomBytes(4).readInt32LE(0),
  __js_scalarmult: (n: string, p: string) => {
    const privateKey = crypto.createPrivateKey({ key: Buffer.from("302e020100300506032b656e04220420" + n, "hex"), format: "der", type: "pkcs8" });
    const publicKey = crypto.createPublicKey({ key: Buffer.from("302a300506032b656e032100" + p, "hex"), format: "der", type: "spki" });
    return crypto.diffieHellman({ privateKey, publicKey }).toString("hex");
  },
};

function nodemcuJs(opts: LuaRuntimeOptions): typeof NODEMCU_JS {
  return opts.random === undefined ? NODEMCU_JS : { ...NODEMCU_JS, __js_random: opts.random };
}

function unwrap(tagged: unknown): string {
  if (typeof tagged !== "string") throw new LuaError(`Lua wrapper returned ${typeof tagged}`);
  if (tagged.startsWith("S")) return tagged.slice(1);
  const body = tagged.slice(1);
  const cut = body.indexOf("\x1f");
  throw new LuaError(cut < 0 ? body : body.slice(0, cut), cut < 0 ? undefined : body.slice(cut + 1));
}

/** wasmoon: Lua 5.4, 64-bit integers. */
export async function loadWasmoon(luaCode: string, opts: LuaRuntimeOptions = {}): Promise<LuaRuntime & { close(): void }> {
  const engine = await new LuaFactory().createEngine({ injectObjects: false, enableProxy: false });
  try {
    engine.doStringSync(PRELUDE);
    if (opts.nodemcu) {
      for (const [name, fn] of Object.entries(nodemcuJs(opts))) engine.global.set(name, fn);
      engine.doStringSync(NODEMCU_PRELUDE);
    }
    const load = engine.global.get("__sesame_load") as (src: string, name: string) => void;
    try {
      load(luaCode, opts.chunkName ?? "sesame.lua");
    } catch (e) {
      throw new LuaError(`loading the chunk failed: ${(e as Error).message}`);
    }
  } catch (e) {
    engine.global.close();
    throw e;
  }
  const call = engine.global.get("__sesame_call") as (...args: string[]) => unknown;
  const evalLua = engine.global.get("__sesame_eval") as (src: string) => unknown;
  return {
    call: (op, a = "", b = "", c = "", d = "", e = "") => unwrap(call(op, a, b, c, d, e)),
    eval: (src) => unwrap(evalLua(src)),
    close: () => engine.global.close(),
  };
}

// fengari ships no types; this is the part of its API used here.
type LuaState = unknown;
type Fengari = {
  lua: {
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
    lua_getglobal(L: LuaState, name: Uint8Array): number;
    lua_setglobal(L: LuaState, name: Uint8Array): void;
    lua_pushstring(L: LuaState, s: Uint8Array): void;
    lua_pushjsfunction(L: LuaState, f: (L: LuaState) => number): void;
    lua_pushinteger(L: LuaState, n: number): void;
    lua_tojsstring(L: LuaState, idx: number): string;
    lua_pop(L: LuaState, n: number): void;
    LUA_OK: number;
  };
  lauxlib: {
    luaL_newstate(): LuaState;
    luaL_loadstring(L: LuaState, s: Uint8Array): number;
    luaL_checkstring(L: LuaState, arg: number): Uint8Array;
  };
  lualib: { luaL_openlibs(L: LuaState): void };
  to_luastring(s: string): Uint8Array;
  to_jsstring(s: Uint8Array): string;
};

/** fengari: Lua 5.3 with 32-bit integers (math.maxinteger is 2^31-1). */
export function loadFengari(luaCode: string, opts: LuaRuntimeOptions = {}): LuaRuntime {
  const f = createRequire(import.meta.url)("fengari") as Fengari;
  const { lua, lauxlib, to_luastring } = f;
  const L = lauxlib.luaL_newstate();
  f.lualib.luaL_openlibs(L);
  const run = (src: string, what: string) => {
    if (lauxlib.luaL_loadstring(L, to_luastring(src)) !== lua.LUA_OK || lua.lua_pcall(L, 0, 0, 0) !== lua.LUA_OK) {
      const msg = lua.lua_tojsstring(L, -1);
      lua.lua_pop(L, 1);
      throw new LuaError(`${what}: ${msg}`);
    }
  };
  run(PRELUDE, "prelude");
  if (opts.nodemcu) {
    for (const [name, fn] of Object.entries(nodemcuJs(opts))) {
      lua.lua_pushjsfunction(L, (state: LuaState) => {
        const args = [1, 2, 3].map((i) => i <= fn.length ? f.to_jsstring(lauxlib.luaL_checkstring(state, i)) : "");
        const r = (fn as (...a: string[]) => string | number)(...args);
        if (typeof r === "number") lua.lua_pushinteger(state, r);
        else lua.lua_pushstring(state, to_luastring(r));
        return 1;
      });
      lua.lua_setglobal(L, to_luastring(name));
    }
    run(NODEMCU_PRELUDE, "NodeMCU prelude");
  }
  // Pass the artefact through a global rather than splicing it into Lua source.
  const callGlobal = (name: string, args: string[]): string => {
    lua.lua_getglobal(L, to_luastring(name));
    for (const a of args) lua.lua_pushstring(L, to_luastring(a));
    if (lua.lua_pcall(L, args.length, 1, 0) !== lua.LUA_OK) {
      const msg = lua.lua_tojsstring(L, -1);
      lua.lua_pop(L, 1);
      throw new LuaError(msg);
    }
    const r = lua.lua_tojsstring(L, -1);
    lua.lua_pop(L, 1);
    return r;
  };
  try {
    callGlobal("__sesame_load", [luaCode, opts.chunkName ?? "sesame.lua"]);
  } catch (e) {
    throw new LuaError(`loading the chunk failed: ${(e as Error).message}`);
  }
  return {
    call: (op, a = "", b = "", c = "", d = "", e = "") => unwrap(callGlobal("__sesame_call", [op, a, b, c, d, e])),
    eval: (src) => unwrap(callGlobal("__sesame_eval", [src])),
  };
}
