// Short property names for a board's bundle. On Espruino a property whose name is longer than four
// characters takes one more JsVar (two past thirteen), on every object that has it, for as long as it lives:
// `length`, `seqHi` and `flags` of each record header, `confirmed` and `transports` of a session. esbuild
// renames (mangleProps) the properties of the firmware's own state types to one or two letters, consistently
// across the bundle; everything something outside the bundle reads or writes keeps its name:
//
//   - the types other code sees: the board profile (parsed from JSON), the crypto provider and its AEADs (the
//     REPL and the tests call them), Espruino's natives and NRF's service description, a LoRa driver, Storage;
//   - JavaScript's own properties (length, buffer, push, ...);
//   - what tests read in a running board's state (sesame.state(): sender, ids, next, pending, lost, id).
// Config fields are read by string (f["psk"]), which esbuild never renames.
import * as fs from "node:fs";
import * as path from "node:path";
import ts from "typescript";

/** Types whose members other code uses by name. */
const API_TYPES = new Set([
  "BoardProfile", "NativeCrypto", "CryptoProvider", "KeyPair", "Aead", "EspruinoCrypto", "Natives", "BootNatives", "LoraHw",
  "LoraDriver", "SeqStorage", "ServiceUpdate", "NodeTimer", "Codec",
]);
/** Files whose type literals describe the board's natives. */
const API_FILES = new Set(["firmware/hw/espruino.ts", "firmware/hw/nodemcu.ts"]);
/** JavaScript's own properties, and what tests read in a board's state. */
const RESERVED = new Set([
  "length", "buffer", "byteLength", "byteOffset", "name", "prototype", "constructor", "push", "pop", "shift", "splice", "slice",
  "join", "split", "indexOf", "concat", "substring", "substr", "charAt", "charCodeAt", "toString", "apply", "call", "bind", "set",
  "subarray", "fill", "map", "filter", "forEach", "keys", "size", "value", "data", "next", "done",
  "sender", "ids", "pending", "lost", "lostIds", "id",
]);

function firmwareFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) firmwareFiles(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** The property names of the firmware's own types that no one outside the bundle uses, as esbuild's mangleProps. */
export function mangledProps(root: string): RegExp {
  const mine = new Set<string>();
  const theirs = new Set<string>(RESERVED);
  for (const file of firmwareFiles(path.join(root, "firmware"))) {
    const rel = path.relative(root, file).split(path.sep).join("/");
    const sf = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.ES2020, true);
    const visit = (n: ts.Node, owner: string) => {
      const o = ts.isTypeAliasDeclaration(n) || ts.isInterfaceDeclaration(n) ? n.name.text : owner;
      if (ts.isPropertySignature(n) && ts.isIdentifier(n.name)) (API_TYPES.has(o) || (o === rel && API_FILES.has(rel)) ? theirs : mine).add(n.name.text);
      ts.forEachChild(n, (c) => visit(c, o));
    };
    visit(sf, rel);
  }
  // Up to four characters a name fits in its JsVar: renaming it would save nothing.
  const names = [...mine].filter((n) => !theirs.has(n) && n.length > 4).sort();
  return new RegExp(`^(?:${names.join("|")})$`);
}
