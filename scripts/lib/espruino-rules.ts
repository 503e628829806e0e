// What Espruino 2v29 lacks, as data for scripts/espruino-check.ts and the test sandbox
// (test/harness/espruino-sandbox.ts). Each entry was checked against the real 2v29 interpreter.

/** Globals that do not exist: a reference is a ReferenceError on the board. */
export const MISSING_GLOBALS: Record<string, string> = {
  Map: "no Map in Espruino",
  Set: "no Set in Espruino",
  WeakMap: "no WeakMap in Espruino (esbuild lowers #private fields to it)",
  WeakSet: "no WeakSet in Espruino",
  WeakRef: "no WeakRef in Espruino",
  FinalizationRegistry: "no FinalizationRegistry in Espruino",
  Symbol: "no Symbol in Espruino",
  BigInt: "no BigInt in Espruino",
  BigInt64Array: "no BigInt64Array in Espruino",
  BigUint64Array: "no BigUint64Array in Espruino",
  Proxy: "no Proxy in Espruino",
  Reflect: "no Reflect in Espruino",
  TextEncoder: "no TextEncoder in Espruino",
  TextDecoder: "no TextDecoder in Espruino",
  RangeError: "no RangeError global in Espruino",
  Intl: "no Intl in Espruino",
  SharedArrayBuffer: "no SharedArrayBuffer in Espruino",
  Atomics: "no Atomics in Espruino",
  queueMicrotask: "no queueMicrotask in Espruino",
  structuredClone: "no structuredClone in Espruino",
};

/** Static members (`Object.member`) that are missing, or present but wrong. */
export const MISSING_MEMBERS: Record<string, string> = {
  "Math.imul": "missing in Espruino",
  "Math.clz32": "missing in Espruino",
  "Math.pow": "inexact in Espruino for exponents >= 10",
  "Math.trunc": "missing in Espruino",
  "Math.log2": "missing in Espruino",
  "Math.log10": "missing in Espruino",
  "Math.cbrt": "missing in Espruino",
  "Math.hypot": "missing in Espruino",
  "Math.fround": "missing in Espruino",
  "Array.from": "missing in Espruino",
  "Array.of": "missing in Espruino",
  "Object.freeze": "missing in Espruino",
  "Object.seal": "missing in Espruino",
  "Object.isFrozen": "missing in Espruino",
  "Object.is": "missing in Espruino",
  "Number.isInteger": "missing in Espruino",
  "Number.isFinite": "missing in Espruino",
  "Number.isNaN": "missing in Espruino",
  "Number.isSafeInteger": "missing in Espruino",
  "Number.parseInt": "missing in Espruino (use parseInt)",
  "Number.parseFloat": "missing in Espruino (use parseFloat)",
  "Number.MAX_SAFE_INTEGER": "missing in Espruino",
  "Number.MIN_SAFE_INTEGER": "missing in Espruino",
  "Promise.race": "missing in Espruino",
  "Promise.allSettled": "missing in Espruino",
  "Promise.any": "missing in Espruino",
};

export const TYPED_ARRAYS = [
  "Uint8Array",
  "Int8Array",
  "Uint8ClampedArray",
  "Uint16Array",
  "Int16Array",
  "Uint32Array",
  "Int32Array",
  "Float32Array",
  "Float64Array",
];
for (const t of TYPED_ARRAYS) {
  MISSING_MEMBERS[t + ".from"] = "missing in Espruino";
  MISSING_MEMBERS[t + ".of"] = "missing in Espruino";
}

/**
 * Built-ins whose `.prototype` is an empty object in Espruino: methods live in the interpreter, so
 * `Array.prototype.slice` (and `.call` on it) is undefined. Object.prototype is the exception.
 */
export const EMPTY_PROTOTYPES = new Set([
  "Array",
  "String",
  "Number",
  "Boolean",
  "Function",
  "ArrayBuffer",
  "DataView",
  "Promise",
  ...TYPED_ARRAYS,
]);

/** Method names missing on every Espruino built-in that has a method of that name in Node. */
export const MISSING_METHODS: Record<string, string> = {
  at: "Array/String/TypedArray .at() is missing in Espruino",
  flat: "Array .flat() is missing in Espruino",
  flatMap: "Array .flatMap() is missing in Espruino",
  codePointAt: "String .codePointAt() is missing in Espruino",
  normalize: "String .normalize() is missing in Espruino",
  localeCompare: "String .localeCompare() is missing in Espruino",
  trimStart: "String .trimStart() is missing in Espruino",
  trimEnd: "String .trimEnd() is missing in Espruino",
  copyWithin: "Array/TypedArray .copyWithin() is missing in Espruino",
  reduceRight: "Array .reduceRight() is missing in Espruino",
  finally: "Promise .finally() is missing in Espruino",
};

/** `class X extends <one of these>` does not work in Espruino. */
export const BUILTIN_CLASSES = new Set([
  "Error",
  "TypeError",
  "RangeError",
  "SyntaxError",
  "ReferenceError",
  "EvalError",
  "URIError",
  "Array",
  "ArrayBuffer",
  "DataView",
  "Promise",
  "Map",
  "Set",
  "String",
  "Number",
  "Boolean",
  "Function",
  "RegExp",
  "Date",
  ...TYPED_ARRAYS,
]);

/**
 * Array methods that call their callback before returning: a closure passed to one of them runs in place,
 * so it neither defers a call past a later declaration nor outlives the loop iteration that created it.
 */
export const SYNC_CALLBACK_METHODS = new Set([
  "forEach",
  "map",
  "filter",
  "reduce",
  "some",
  "every",
  "find",
  "findIndex",
  "sort",
]);

/** Prototype members the sandbox deletes so that code using them fails there as it would on the board. */
export const MISSING_PROTOTYPE_METHODS: Record<string, string[]> = {
  Array: ["at", "flat", "flatMap", "copyWithin", "reduceRight", "lastIndexOf", "keys", "values", "entries"],
  TypedArray: ["at", "copyWithin", "lastIndexOf", "keys", "values", "entries"],
  String: ["at", "codePointAt", "normalize", "localeCompare", "trimStart", "trimEnd", "search"],
  Promise: ["finally"],
};
