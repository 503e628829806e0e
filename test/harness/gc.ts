// A full garbage collection on demand, for tests that measure what stays alive: mocha runs without
// --expose-gc, so the flag is set at run time and the function is taken from a fresh context.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
}
