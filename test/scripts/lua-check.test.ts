import assert from "node:assert/strict";
import { checkLua } from "../../scripts/lua-check";
import { toLuaLiteral } from "../../scripts/lib/lua-table";
import { loadFengari } from "../../host/sim/lua-runtime";

// The shape of a TypeScriptToLua bundle: a lualib section, then one function per module.
const BUNDLE = `local ____modules = {}
____modules = {
["lualib_bundle"] = function(...)
local function __TS__Big() return 4294967296 + 0xFFFFFFFF end
return { __TS__Big = __TS__Big }
 end,
["firmware.target.lua"] = function(...)
local ____exports = {}
function ____exports.unsigned(x) return x & ((1 << 32) - 1) end
return ____exports
 end,
["firmware.crypto.thing"] = function(...)
local ____exports = {}
-- a comment may say 4294967296 or Uint8Array
local s = "4294967296 Uint8Array ^"
local long = [[ 9999999999 ]]
function ____exports.f(x)
    local m = 2147483647
    return x & 4294967295
end
return ____exports
 end,
}
return require("firmware.crypto.thing", ...)
`;

describe("lua-check", () => {
  it("rejects an integer literal above 2^31-1 outside lualib, naming its line and module", () => {
    const problems = checkLua(BUNDLE);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0].line, 19);
    assert.equal(problems[0].module, "firmware.crypto.thing");
    assert.match(problems[0].construct, /4294967295 above 2147483647/);
    assert.equal(problems[0].snippet, "return x & 4294967295");
  });

  it("ignores lualib, strings and comments, but not code", () => {
    assert.equal(checkLua(BUNDLE.replace("return x & 4294967295", "return x")).length, 0);
    assert.equal(checkLua("local big = 4294967296\n").length, 1);
  });

  it("rejects hex literals that wrap on 32-bit Lua", () => {
    assert.match(checkLua("local m = 0xFFFFFFFF\n")[0].construct, /wraps on 32-bit Lua/);
    assert.deepEqual(checkLua("local m = 0x7FFFFFFF\n"), []);
  });

  it("rejects typed arrays, Math leftovers, float power and forbidden lualib polyfills", () => {
    const constructs = (code: string) => checkLua(code).map((p) => p.construct);
    assert.match(constructs("local u = __TS__New(Uint8Array, 4)\n")[0], /__TS__New of a typed array \(Uint8Array\)/);
    assert.match(constructs("local w = Int32Array\n")[0], /reference to Int32Array/);
    assert.match(constructs("return Math:imul(a, b)\n")[0], /Math\.imul/);
    assert.match(constructs("return a ^ b\n")[0], /float power/);
    assert.match(constructs("local Map = ____lualib.Map\nlocal m = __TS__New(Map)\n")[0], /lualib polyfill Map/);
    assert.deepEqual(constructs("local t = { Uint8Array = 1 }\nreturn t.Uint8Array\n"), [], "field names are not references");
  });

  it("serializes a board profile to a Lua table that round-trips", () => {
    const profile = { name: "b", nested: { list: [1, 2, 3], flag: true, none: null }, "odd-key": 'quote " and \\ and \n', end: 1 };
    const lua = loadFengari(`return { probe = function() return "" end }`);
    const literal = toLuaLiteral(profile);
    assert.equal(lua.eval(`local t = ${literal}; return t.name .. #t.nested.list .. tostring(t.nested.flag) .. t["odd-key"] .. t["end"]`), 'b3truequote " and \\ and \n1');
  });
});
