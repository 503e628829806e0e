// An Espruino-shaped JavaScript realm (node:vm) for running the built bundles in tests without a board.
//
// What it takes away, so a bundle that relies on it fails here as on the board: the globals and library
// members Espruino 2v29 lacks (scripts/lib/espruino-rules.ts) are deleted, and Math.pow is made inexact
// for exponents >= 10 as Espruino's is. What V8 would happily run but Espruino's parser rejects (destructuring,
// `**`, ...), or runs differently (no hoisting, one `let` per loop), cannot be taken away from V8: by default
// the bundle is first put through scripts/espruino-check.ts and refused if that finds such a construct.
// What it adds: print, console.log, E (hwRand, getSizeOf, toString, toUint8Array), require("crypto") with
// the board's natives (host/sim/espruino-natives.ts), require("heatshrink"), require("Storage"), timers.
import * as crypto from "node:crypto";
import * as vm from "node:vm";
import type { NativeCrypto } from "../../firmware/board";
import { checkEspruino, EspruinoProblem, formatProblem } from "../../scripts/espruino-check";
import { MISSING_GLOBALS, MISSING_MEMBERS, MISSING_PROTOTYPE_METHODS } from "../../scripts/lib/espruino-rules";
import type { RawSourceMap } from "../../scripts/lib/sourcemap";
import { bytesOf, cryptoModule, heatshrinkModule, Realm, storageModule } from "./espruino-natives";

export const NO_NATIVE_CRYPTO: NativeCrypto = { sha256: false, aes: false, aesCcm: false, hmac: false, x25519: false };

export type SandboxOptions = {
  /** The board's natives: which parts of require("crypto") exist. Default: none (no crypto module). */
  nativeCrypto?: NativeCrypto;
  /** The global the bundle assigns its exports to. Default "sesame". */
  globalName?: string;
  /** Refuse bundles with constructs Espruino cannot parse or hoist (see above). Default true. */
  staticCheck?: boolean;
  /** The bundle's source map, so refusals name the TypeScript line. */
  sourceMap?: RawSourceMap;
  /** Also write print() output to the console. */
  echo?: boolean;
  /** Per-call time limit. Default 120 s. */
  timeoutMs?: number;
  /** Initial Storage files (name -> byte string). */
  storage?: Record<string, string>;
  /** Name for stack traces. */
  filename?: string;
  /** Board APIs besides the defaults (NRF, getTime, LED1...), and members added to E (getTemperature...). */
  globals?: Record<string, unknown>;
  E?: Record<string, unknown>;
  /** The Storage files themselves, kept by the caller across power cycles (default: a copy of `storage`). */
  files?: Map<string, string>;
};

export type EspruinoSandbox = {
  /** The bundle's exports, living in the sandbox realm. */
  sesame: any;
  /** sesame.probe(op, a, b, c, d, e) inside the sandbox; unused arguments are "". */
  call(op: string, a?: string, b?: string, c?: string, d?: string, e?: string): string;
  context: vm.Context;
  /** Everything printed so far, one entry per print(). */
  output: string[];
  /** Storage files. */
  storage: Map<string, string>;
};

export class EspruinoRefusal extends Error {
  constructor(readonly problems: EspruinoProblem[]) {
    super(`Espruino would not run this bundle:\n${problems.map(formatProblem).join("\n")}`);
  }
}

/** Kinds of problem that V8 would not reproduce at run time; the others fail in the sandbox by themselves. */
const REFUSED_KINDS = new Set(["parse", "syntax", "hoisting", "closure"]);

// Runs inside the sandbox: removes what Espruino lacks from this realm's own built-ins.
const STRIP_SOURCE = `(function (globals, members, protoMethods) {
  var TypedArray = Object.getPrototypeOf(Uint8Array);
  for (var i = 0; i < globals.length; i++) delete globalThis[globals[i]];
  for (var j = 0; j < members.length; j++) {
    var dot = members[j].indexOf("."), owner = globalThis[members[j].slice(0, dot)], name = members[j].slice(dot + 1);
    // Uint8Array.from lives on %TypedArray%: delete where it is defined.
    while (owner && !Object.prototype.hasOwnProperty.call(owner, name)) owner = Object.getPrototypeOf(owner);
    if (owner && owner !== Object.prototype && owner !== Function.prototype) delete owner[name];
  }
  var protos = { Array: Array.prototype, TypedArray: TypedArray.prototype, String: String.prototype, Promise: Promise.prototype };
  for (var k in protoMethods) for (var m = 0; m < protoMethods[k].length; m++) delete protos[k][protoMethods[k][m]];
  var exactPow = Math.pow;
  Math.pow = function pow(x, y) { var r = exactPow(x, y); return y >= 10 ? r * (1 + exactPow(2, -40)) : r; };
})`;

const REALM_HELPERS_SOURCE = `({
  buffer: function (bytes) { var u = new Uint8Array(bytes.length); for (var i = 0; i < bytes.length; i++) u[i] = bytes[i]; return u.buffer; },
  object: function () { return {}; },
  error: function (kind, message) { return kind === "TypeError" ? new TypeError(message) : new Error(message); }
})`;

/** A rough JsVar count: Espruino stores about 12 bytes of data per 16-byte JsVar. */
function sizeOf(v: unknown, seen: Set<unknown>): number {
  if (v === null || typeof v !== "object") {
    if (typeof v === "string") return 1 + Math.ceil(Math.max(0, v.length - 4) / 12);
    if (typeof v === "function") return 2 + Math.ceil(String(v).length / 12);
    return 1;
  }
  if (seen.has(v)) return 0;
  seen.add(v);
  if (ArrayBuffer.isView(v)) return 2 + Math.ceil(v.byteLength / 12);
  let n = 1;
  for (const [k, x] of Object.entries(v)) n += (Array.isArray(v) ? 0 : Math.ceil(k.length / 12)) + sizeOf(x, seen);
  return n;
}

function format(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined || typeof v !== "object") return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

export function loadEspruino(bundleCode: string, opts: SandboxOptions = {}): EspruinoSandbox {
  const globalName = opts.globalName ?? "sesame";
  if (opts.staticCheck !== false) {
    const refused = checkEspruino(bundleCode, opts.sourceMap, { file: opts.filename ?? "bundle.js" }).filter((p) => REFUSED_KINDS.has(p.kind));
    if (refused.length > 0) throw new EspruinoRefusal(refused);
  }
  const output: string[] = [];
  const storage = opts.files ?? new Map(Object.entries(opts.storage ?? {}));
  const context = vm.createContext({});
  const run = (code: string) => vm.runInContext(code, context, { timeout: opts.timeoutMs ?? 120_000 });
  run(STRIP_SOURCE)(Object.keys(MISSING_GLOBALS), Object.keys(MISSING_MEMBERS).filter((m) => m !== "Math.pow"), MISSING_PROTOTYPE_METHODS);

  const print = (...args: unknown[]) => {
    const line = args.map(format).join(" ");
    output.push(line);
    if (opts.echo) console.log(line);
  };
  const realm: Realm = { ...(run(REALM_HELPERS_SOURCE) as Omit<Realm, "print">), print };
  const cryptoMod = cryptoModule(opts.nativeCrypto ?? NO_NATIVE_CRYPTO, realm);
  const storageMod = storageModule(storage, realm);
  const heatshrinkMod = heatshrinkModule(realm);
  const E = realm.object();
  Object.assign(E, {
    hwRand: () => crypto.randomBytes(4).readInt32LE(0),
    getSizeOf: (v: unknown) => sizeOf(v, new Set()),
    toString: (...args: unknown[]) => args.map((a) => String.fromCharCode(...(bytesOf(a, realm) ?? []))).join(""),
    toUint8Array: (...args: unknown[]) => {
      const parts = args.map((a) => bytesOf(a, realm) ?? new Uint8Array(0));
      return new (run("Uint8Array") as Uint8ArrayConstructor)(realm.buffer(Buffer.concat(parts)));
    },
    ...opts.E,
  });
  Object.assign(context, {
    print,
    console: { log: print },
    E,
    global: context,
    require: (name: string) => {
      if (name === "crypto" && cryptoMod) return cryptoMod;
      if (name === "Storage") return storageMod;
      if (name === "heatshrink") return heatshrinkMod;
      throw realm.error("Error", `Module ${name} not found`);
    },
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    ...opts.globals,
  });

  vm.runInContext(bundleCode, context, { filename: opts.filename ?? "bundle.js", timeout: opts.timeoutMs ?? 120_000 });
  const sesame = (context as Record<string, any>)[globalName];
  if (sesame === undefined) throw new Error(`the bundle did not define the global ${globalName}`);
  const probeCall = new vm.Script(`${globalName}.probe(__args[0], __args[1], __args[2], __args[3], __args[4], __args[5])`);
  return {
    sesame,
    context,
    output,
    storage,
    call(op, a = "", b = "", c = "", d = "", e = "") {
      (context as Record<string, unknown>).__args = [op, a, b, c, d, e];
      const result: unknown = probeCall.runInContext(context, { timeout: opts.timeoutMs ?? 120_000 });
      if (typeof result !== "string") throw new Error(`probe(${op}) returned ${typeof result}, not a string`);
      return result;
    },
  };
}
