// An approximate JsVar count for the Espruino-shaped sandbox, so a board that would run out of memory on
// the device runs out here too. Espruino keeps every value in fixed-size JsVars (16 bytes on nRF52, 12 of
// them data). For a bundle loaded from Storage, function code stays in flash; what costs RAM is:
//   - each function: the function itself, its flash code pointer, its name or scope link, and one JsVar
//     per parameter name (measured on the 2v29 interpreter: a top-level 2-parameter function costs 6);
//   - each top-level binding: its name (small integers live inside the name);
//   - at run time: objects (1 + 1 per property), arrays (1 + 1 per element), strings (1 per 12 characters
//     beyond the first few), typed arrays (2 + their bytes / 12), closures (3).
import * as acorn from "acorn";
import * as walk from "acorn-walk";

/** Measured: a top-level function costs 4 + its parameters; nested closures and the bundle's wrapper add
 * about one more each on average (calibrated against the interpreter's process.memory() for the Puck.js bundle). */
const FUNCTION_BASE = 5;

/**
 * What an event holds while it runs beyond what it leaves behind, which a sample taken between events never
 * sees: the scopes of its call chain with their arguments and locals, and the crypto's intermediate buffers
 * (HMAC inputs, CCM blocks, the next key tried at a rekey). Measured on the 2v29 interpreter (32-bit build,
 * 13-byte JsVars, `npm run bench -- boards`) as a Puck.js session's high-water mark less its state after the
 * session: 1,283 - 1,067 = 216 (it was 395 while the native crypto's results failed for want of a flat run
 * long before memory was full: see firmware/hw/espruino.ts).
 */
export const EVENT_JSVARS = 216;
const codeCache = new Map<string, number>();

/** JsVars the loaded code itself holds (functions and top-level bindings), from the bundle's syntax tree. */
export function codeJsVars(code: string): number {
  const hit = codeCache.get(code);
  if (hit !== undefined) return hit;
  const ast = acorn.parse(code, { ecmaVersion: "latest" });
  let n = 0;
  walk.full(ast, (node) => {
    if (node.type === "FunctionDeclaration" || node.type === "FunctionExpression" || node.type === "ArrowFunctionExpression") {
      n += FUNCTION_BASE + (node as acorn.Function).params.length;
    }
  });
  // Bindings that live as long as the bundle: the top level of the program and of its wrapper function
  // (`var sesame = (function () { ... })()`); a function's own locals come and go with its calls.
  const top = (body: acorn.Node[]) => {
    for (const s of body) if (s.type === "VariableDeclaration") n += (s as acorn.VariableDeclaration).declarations.length;
  };
  top(ast.body);
  walk.simple(ast, {
    CallExpression(c) {
      const callee = (c as acorn.CallExpression).callee;
      if (callee.type === "FunctionExpression" && callee.body.type === "BlockStatement") top(callee.body.body);
    },
  });
  codeCache.set(code, n);
  return n;
}

function stringVars(s: string): number {
  return s.length <= 4 ? 0 : Math.ceil(s.length / 12);
}

/** JsVars of a live object graph (objects from the sandbox realm). */
export function valueJsVars(root: unknown): number {
  const seen = new Set<unknown>();
  const buffers = new Set<ArrayBufferLike>();
  const visit = (v: unknown): number => {
    if (v === null || v === undefined || typeof v === "boolean") return 0;
    if (typeof v === "number") return Number.isInteger(v) && Math.abs(v) < 2 ** 31 ? 0 : 1;
    if (typeof v === "string") return stringVars(v);
    if (typeof v === "function") {
      if (seen.has(v)) return 0;
      seen.add(v);
      return 3;
    }
    if (typeof v !== "object" || seen.has(v)) return 0;
    seen.add(v);
    if (ArrayBuffer.isView(v)) {
      if (buffers.has(v.buffer)) return 1;
      buffers.add(v.buffer);
      return 2 + Math.ceil(v.buffer.byteLength / 12);
    }
    let n = 1;
    if (Array.isArray(v)) {
      for (const x of v) n += 1 + visit(x);
      return n;
    }
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) n += 1 + stringVars(k) + visit(x);
    return n;
  };
  return visit(root);
}
