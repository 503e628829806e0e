// JSON -> Lua table constructor, for the board profile global in a Lua artefact. Arrays become 1-based
// sequences (what TypeScriptToLua expects of a JavaScript array); objects become keyed tables.

const LUA_KEYWORDS = new Set(
  "and break do else elseif end false for function goto if in local nil not or repeat return then true until while".split(" "),
);

/** A Lua string literal: printable ASCII as is, everything else as a decimal escape. */
export function luaString(s: string): string {
  let out = '"';
  for (const ch of Buffer.from(s, "utf8")) {
    if (ch === 0x22) out += '\\"';
    else if (ch === 0x5c) out += "\\\\";
    else if (ch >= 0x20 && ch < 0x7f) out += String.fromCharCode(ch);
    // Three digits always, so a following digit cannot extend the escape.
    else out += "\\" + String(ch).padStart(3, "0");
  }
  return out + '"';
}

function luaNumber(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`lua-table: ${n} has no Lua literal`);
  // Integers outside the 32-bit range would be floats on a 32-bit Lua anyway: write them as floats everywhere.
  if (Number.isInteger(n) && Math.abs(n) <= 0x7fffffff) return String(n);
  return Number.isInteger(n) ? n.toFixed(1) : String(n);
}

function luaKey(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !LUA_KEYWORDS.has(k) ? k : `[${luaString(k)}]`;
}

/** The Lua expression for a JSON value; `indent` is the current indentation of nested lines. */
export function toLuaLiteral(value: unknown, indent = ""): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return luaNumber(value);
  if (typeof value === "string") return luaString(value);
  const inner = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "{}";
    return "{\n" + value.map((v) => inner + toLuaLiteral(v, inner)).join(",\n") + "\n" + indent + "}";
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}";
    return "{\n" + entries.map(([k, v]) => `${inner}${luaKey(k)} = ${toLuaLiteral(v, inner)}`).join(",\n") + "\n" + indent + "}";
  }
  throw new Error(`lua-table: cannot serialize a ${typeof value}`);
}
