import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { NativeCrypto } from "../../../firmware/board";
import { espruinoBinary } from "../../../host/sim/espruino-native";
import { decryptionRoundKeys, expandKey, forwardCipher } from "../../../host/sim/espruino-natives";
import { EspruinoRefusal, loadEspruino } from "../../../host/sim/espruino-sandbox";

const ALL_NATIVE: NativeCrypto = { sha256: true, aes: true, aesCcm: true, hmac: false, x25519: false };

/** A bundle whose probe(op) evaluates `op` as a JavaScript expression: enough to poke at the realm. */
const EVAL_BUNDLE = "var sesame = { probe: function (op) { return String(eval(op)); } };";

function sandbox(native: NativeCrypto = ALL_NATIVE) {
  return loadEspruino(EVAL_BUNDLE, { nativeCrypto: native });
}

/** Runs `expr` in a fresh sandbox; returns the name of what it threw, or "ok:" + its value. */
function outcome(expr: string): string {
  try {
    return "ok:" + sandbox().call(expr);
  } catch (e) {
    return (e as Error).name + ": " + (e as Error).message;
  }
}

// Crypto probes in plain ES5, shared by the sandbox and the real interpreter (conformance test below).
const CRYPTO_SCRIPT = `
var c = require("crypto");
function hex(b) { if (b === undefined) return "undefined"; var u = new Uint8Array(b), s = "";
  for (var i = 0; i < u.length; i++) s += (u[i] < 16 ? "0" : "") + u[i].toString(16); return s; }
var key = new Uint8Array(16); for (var i = 0; i < 16; i++) key[i] = i;
var msg = "hello world, 123";
function line(name, v) { print("@@" + name + " " + v); }
line("sha256", hex(c.SHA256("abc")));
line("sha1-array", hex(c.SHA1([1, 2, 3])));
line("ctr-enc", hex(c.AES.encrypt(msg, key, { mode: "CTR", iv: [1, 2, 3] })));
line("ctr-dec", hex(c.AES.decrypt(msg, key, { mode: "CTR", iv: [1, 2, 3] })));
line("cfb-enc", hex(c.AES.encrypt(msg + "45", key, { mode: "CFB", iv: [1, 2, 3] })));
line("cfb-dec", hex(c.AES.decrypt(msg + "45", key, { mode: "CFB", iv: [1, 2, 3] })));
line("ecb-20", hex(c.AES.encrypt(new Uint8Array(20), key, { mode: "ECB" })));
line("ecb-5", hex(c.AES.decrypt(new Uint8Array(5), key, { mode: "ECB" })));
line("cbc-enc", hex(c.AES.encrypt(new Uint8Array(32), key, { iv: [9, 9] })));
line("cbc-dec", hex(c.AES.decrypt(new Uint8Array(32), key)));
line("cbc-short", hex(c.AES.encrypt(new Uint8Array(5), key)));
line("ofb", hex(c.AES.encrypt(new Uint8Array(16), key, { mode: "OFB" })));
line("aes256-ecb", hex(c.AES.encrypt(new Uint8Array(16), new Uint8Array(32), { mode: "ECB" })));
var r = c.AES.ccmEncrypt("Hello", key, [1, 2, 3, 4, 5, 6, 7], 4);
line("ccm", hex(r.data) + "/" + hex(r.tag));
line("ccm-open", hex(c.AES.ccmDecrypt(r.data, key, [1, 2, 3, 4, 5, 6, 7], r.tag)));
line("ccm-bad-tag", hex(c.AES.ccmDecrypt(r.data, key, [1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0])));
line("ccm-empty", hex(c.AES.ccmEncrypt("", key, new Uint8Array(13), 16).tag));
line("ccm-short-nonce", hex(c.AES.ccmEncrypt("Hello", key, [1, 2, 3], 4)));
line("ccm-odd-tag", hex(c.AES.ccmEncrypt("Hello", key, [1, 2, 3, 4, 5, 6, 7], 5)));
`;

function hex(b: ArrayBuffer | undefined): string {
  return b === undefined ? "undefined" : Buffer.from(new Uint8Array(b)).toString("hex");
}

describe("espruino sandbox", () => {
  it("runs a bundle and calls sesame.probe", () => {
    const s = loadEspruino('var sesame = { probe: function (op, a) { return op + ":" + a; } };');
    assert.equal(s.call("x", "y"), "x:y");
  });

  it("fails at run time where Espruino lacks a global or library member", () => {
    assert.match(outcome("new Map()"), /^ReferenceError/);
    assert.match(outcome("new Set([1])"), /^ReferenceError/);
    assert.match(outcome("BigInt(1)"), /^ReferenceError/);
    assert.match(outcome("Symbol('x')"), /^ReferenceError/);
    assert.match(outcome("new TextEncoder()"), /^ReferenceError/);
    assert.match(outcome("Math.imul(3, 5)"), /^TypeError/);
    assert.match(outcome("Math.clz32(1)"), /^TypeError/);
    assert.match(outcome("Array.from([1, 2])"), /^TypeError/);
    assert.match(outcome("Uint8Array.from([1, 2])"), /^TypeError/);
    assert.match(outcome("Object.freeze({})"), /^TypeError/);
    assert.match(outcome("[1, 2].at(0)"), /^TypeError/);
    assert.equal(outcome("typeof Map"), "ok:undefined");
    // What Espruino has still works.
    assert.equal(outcome("new Uint8Array([1, 2, 300])[2] + (7 >>> 1) + [3, 1, 2].sort().join('')"), "ok:47123");
  });

  it("makes Math.pow inexact for exponents >= 10, as on the board", () => {
    assert.equal(outcome("Math.pow(2, 9) === 512"), "ok:true");
    assert.equal(outcome("Math.pow(2, 31) === 2147483648"), "ok:false");
  });

  it("refuses, before running, a bundle Espruino could not parse or would not hoist", () => {
    assert.throws(() => loadEspruino("var sesame = { probe: function (o) { var { a } = o; return a; } };"), (e: unknown) => {
      assert.ok(e instanceof EspruinoRefusal);
      assert.equal(e.problems[0].construct, "destructuring");
      return true;
    });
    assert.throws(() => loadEspruino("var sesame = make(); function make() { return {}; }"), /call before declaration/);
    // staticCheck: false runs it anyway (V8 hoists, so this one then works).
    assert.ok(loadEspruino("var sesame = make(); function make() { return {}; }", { staticCheck: false }).sesame);
  });

  it("provides print, E and Storage", () => {
    const s = sandbox();
    s.call("print('hi', 1)");
    assert.deepEqual(s.output, ["hi 1"]);
    assert.equal(s.call("var r = E.hwRand(); typeof r === 'number' && (r | 0) === r"), "true");
    assert.equal(s.call("E.getSizeOf({ a: 1 }) > 0"), "true");
    assert.equal(s.call("E.toString(E.toUint8Array([104, 105]))"), "hi");
    assert.equal(s.call("var S = require('Storage'); S.write('k', 'abc'); S.read('k') + S.list().length"), "abc1");
    assert.equal(s.call("require('Storage').writeJSON('j', { x: 1 }); require('Storage').readJSON('j').x"), "1");
    assert.equal(s.storage.get("k"), "abc");
  });

  it("offers require('crypto') only with the natives the board profile lists", () => {
    const none = sandbox({ sha256: false, aes: false, aesCcm: false, hmac: false, x25519: false });
    assert.throws(() => none.call("require('crypto')"), /Module crypto not found/);
    const puck = sandbox({ sha256: true, aes: true, aesCcm: false, hmac: false, x25519: false });
    assert.equal(puck.call("typeof require('crypto').AES.encrypt + typeof require('crypto').AES.ccmEncrypt"), "functionundefined");
    assert.equal(sandbox().call("typeof require('crypto').AES.ccmDecrypt"), "function");
  });

  it("returns ArrayBuffers of the sandbox realm, with correct SHA and CCM", () => {
    const s = sandbox();
    const c = s.call.bind(s);
    assert.equal(c("require('crypto').SHA256('abc') instanceof ArrayBuffer"), "true");
    const sandboxRequire = (s.context as { require(n: string): { SHA256(m: string): ArrayBuffer } }).require;
    const sha = sandboxRequire("crypto").SHA256("abc");
    assert.equal(hex(sha), crypto.createHash("sha256").update("abc").digest("hex"));
    assert.equal(c("var r = require('crypto').AES.ccmEncrypt('Hello', new Uint8Array(16), [1,2,3,4,5,6,7], 8); r.data.byteLength + ',' + r.tag.byteLength"), "5,8");
  });

  it("reproduces the 2v29 AES bugs: CTR/CFB decrypt is wrong, short ECB is zeros, CCM failure is undefined", () => {
    const s = sandbox();
    s.call(CRYPTO_SCRIPT.replace(/\n/g, " "));
    const lines = new Map(s.output.map((l) => [l.slice(2, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1)]));
    const key = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
    const ctr = crypto.createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update("hello world, 123").toString("hex");
    assert.equal(lines.get("ctr-enc"), ctr, "CTR encrypt is right, with a zero counter whatever the iv");
    assert.notEqual(lines.get("ctr-dec"), Buffer.from("hello world, 123").toString("hex"), "CTR decrypt must not undo encrypt");
    assert.notEqual(lines.get("cfb-dec"), lines.get("cfb-enc"));
    assert.equal(lines.get("ecb-5"), "0000000000");
    assert.match(lines.get("ecb-20")!, /^[0-9a-f]{32}00000000$/);
    assert.equal(lines.get("cbc-short"), "undefined");
    assert.equal(lines.get("ofb"), "undefined");
    assert.equal(lines.get("ccm-open"), Buffer.from("Hello").toString("hex"));
    assert.equal(lines.get("ccm-bad-tag"), "undefined");
    assert.ok(s.output.includes("ERROR: Authenticated decryption failed"));
    assert.ok(s.output.includes("ERROR: Feature unavailable"));
  });

  it("has a forward cipher that is AES, so its decryption-key-schedule output is the real bug", () => {
    for (const size of [16, 24, 32]) {
      const key = crypto.randomBytes(size);
      const block = crypto.randomBytes(16);
      const expected = crypto.createCipheriv(`aes-${size * 8}-ecb`, key, null).update(block).toString("hex");
      assert.equal(Buffer.from(forwardCipher(expandKey(key), block)).toString("hex"), expected);
      assert.equal(decryptionRoundKeys(key).length, size / 4 + 7);
    }
  });

  it("matches the real interpreter's crypto output, bugs included (ESPRUINO_BIN)", function () {
    const bin = espruinoBinary();
    if (!bin) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-crypto-"));
    try {
      const file = path.join(dir, "crypto.js");
      fs.writeFileSync(file, CRYPTO_SCRIPT);
      const run = spawnSync(bin!, [file], { input: "", encoding: "latin1", timeout: 60_000 });
      const native = run.stdout.split(/\r?\n/).filter((l) => l.startsWith("@@"));
      const s = sandbox();
      s.call(CRYPTO_SCRIPT.replace(/\n/g, " "));
      assert.ok(native.length > 10, `the interpreter printed:\n${run.stdout}`);
      assert.deepEqual(s.output.filter((l) => l.startsWith("@@")), native);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
