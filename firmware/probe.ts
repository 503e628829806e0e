// One string-in, string-out entry point to every portable primitive, so the same vector files
// (test/vectors/*.json) can be run on every target: the TypeScript source in Node, the Espruino bundle,
// and the Lua bundle, whose only common currency across a sandbox boundary is the string.
import { fromHex, toHex } from "./bytes";
import { Bytes } from "#target";

/** The result of a probe that was refused: an authentication failure or a rejected input. */
export const PROBE_FAIL = "FAIL";

function hex(s: string): Bytes {
  const b = fromHex(s);
  if (b === undefined) throw "probe: bad hex argument";
  return b;
}

/**
 * Runs operation `op` on hex (or decimal, where noted) string arguments and returns hex, or PROBE_FAIL.
 * Unused arguments are passed as "". Unknown operations return "UNKNOWN:" + op.
 */
export function probe(op: string, a: string, b: string, c: string, d: string, e: string): string {
  if (op === "hex") return toHex(hex(a));
  return "UNKNOWN:" + op;
}
