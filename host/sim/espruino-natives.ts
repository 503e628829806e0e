// Emulations of Espruino's native modules for the test sandbox: require("crypto") as in
// libs/crypto/jswrap_crypto.c of 2v29 (mbedtls 2.1.1), bugs included, require("heatshrink") (the same C
// library, compiled to WebAssembly: host/record/gpcomp.ts) and require("Storage").
//
// Errors follow the C code: jsError() only prints "ERROR: ..." and the call returns undefined;
// jsExceptionHere() throws. Known bugs reproduced byte for byte:
//  - AES.decrypt in CTR and CFB mode sets up the *decryption* key schedule and then runs the forward
//    cipher on it (both modes only ever encrypt blocks), so the keystream is wrong.
//  - CTR ignores `iv`: the counter always starts at zero.
//  - CFB is CFB-8; OFB is accepted by name and then fails ("Feature unavailable").
//  - ECB leaves a tail that is not a whole block as zeros (so an input under 16 bytes gives all zeros).
import * as crypto from "node:crypto";
import type { NativeCrypto } from "../../firmware/board";
import { hostCodec } from "../record/gpcomp";

/** Hooks into the sandbox realm, so results look native there (instanceof ArrayBuffer holds). */
export type Realm = {
  buffer: (bytes: Uint8Array) => ArrayBuffer;
  object: () => Record<string, unknown>;
  error: (kind: "Error" | "TypeError", message: string) => Error;
  print: (line: string) => void;
};

/** Bytes of any value Espruino's JSV_GET_AS_CHAR_ARRAY accepts; undefined for undefined. */
export function bytesOf(v: unknown, realm: Realm): Uint8Array | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return Uint8Array.from(v, (c) => c.charCodeAt(0) & 0xff);
  if (typeof v === "number" || typeof v === "boolean") return Uint8Array.of(Number(v) & 0xff);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  if (Object.prototype.toString.call(v) === "[object ArrayBuffer]") return new Uint8Array((v as ArrayBuffer).slice(0));
  if (Array.isArray(v)) return Uint8Array.from(v, (x) => Number(x) & 0xff);
  throw realm.error("TypeError", `If specifying an object, it must be of the form {data : ..., count : N} or {callback : fn} - got ${JSON.stringify(v)}`);
}

// ---- A byte-wise AES that takes any round keys: what the buggy modes run. ----
const SBOX = new Uint8Array(256);
{
  // The S-box from its definition (multiplicative inverse, then the affine map), not a pasted table.
  let p = 1;
  let q = 1;
  do {
    p = p ^ ((p << 1) & 0xff) ^ (p & 0x80 ? 0x1b : 0);
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    const x = q ^ ((q << 1) | (q >> 7)) ^ ((q << 2) | (q >> 6)) ^ ((q << 3) | (q >> 5)) ^ ((q << 4) | (q >> 4));
    SBOX[p] = (x ^ 0x63) & 0xff;
  } while (p !== 1);
  SBOX[0] = 0x63;
}

function xtime(b: number): number {
  return ((b << 1) ^ (b & 0x80 ? 0x1b : 0)) & 0xff;
}

function mul(a: number, b: number): number {
  let r = 0;
  for (; b; b >>= 1, a = xtime(a)) if (b & 1) r ^= a;
  return r;
}

/** The encryption round keys of FIPS 197, as 16-byte blocks. */
export function expandKey(key: Uint8Array): Uint8Array[] {
  const nk = key.length / 4;
  const nr = nk + 6;
  const w = new Uint8Array(16 * (nr + 1));
  w.set(key);
  let rcon = 1;
  for (let i = nk; i < 4 * (nr + 1); i++) {
    let t = w.slice(4 * (i - 1), 4 * i);
    if (i % nk === 0) {
      t = Uint8Array.of(SBOX[t[1]] ^ rcon, SBOX[t[2]], SBOX[t[3]], SBOX[t[0]]);
      rcon = xtime(rcon);
    } else if (nk > 6 && i % nk === 4) {
      t = t.map((b) => SBOX[b]);
    }
    for (let j = 0; j < 4; j++) w[4 * i + j] = w[4 * (i - nk) + j] ^ t[j];
  }
  return Array.from({ length: nr + 1 }, (_, r) => w.slice(16 * r, 16 * r + 16));
}

/** mbedtls_aes_setkey_dec: the encryption keys reversed, InvMixColumns applied to the inner ones. */
export function decryptionRoundKeys(key: Uint8Array): Uint8Array[] {
  const enc = expandKey(key);
  const nr = enc.length - 1;
  return enc.map((_, i) => {
    const k = enc[nr - i];
    if (i === 0 || i === nr) return k;
    const out = new Uint8Array(16);
    for (let c = 0; c < 4; c++) {
      const [a0, a1, a2, a3] = k.subarray(4 * c, 4 * c + 4);
      out[4 * c] = mul(a0, 14) ^ mul(a1, 11) ^ mul(a2, 13) ^ mul(a3, 9);
      out[4 * c + 1] = mul(a0, 9) ^ mul(a1, 14) ^ mul(a2, 11) ^ mul(a3, 13);
      out[4 * c + 2] = mul(a0, 13) ^ mul(a1, 9) ^ mul(a2, 14) ^ mul(a3, 11);
      out[4 * c + 3] = mul(a0, 11) ^ mul(a1, 13) ^ mul(a2, 9) ^ mul(a3, 14);
    }
    return out;
  });
}

/** The forward cipher with the given round keys (mbedtls_aes_encrypt, whatever ctx->rk holds). */
export function forwardCipher(roundKeys: Uint8Array[], block: Uint8Array): Uint8Array {
  const nr = roundKeys.length - 1;
  let s = block.map((b, i) => b ^ roundKeys[0][i]);
  for (let r = 1; r <= nr; r++) {
    const t = new Uint8Array(16);
    for (let i = 0; i < 16; i++) t[i] = SBOX[s[(i + 4 * (i % 4)) % 16]]; // SubBytes + ShiftRows
    if (r < nr) {
      for (let c = 0; c < 4; c++) {
        const [a0, a1, a2, a3] = t.slice(4 * c, 4 * c + 4);
        t[4 * c] = xtime(a0) ^ xtime(a1) ^ a1 ^ a2 ^ a3;
        t[4 * c + 1] = a0 ^ xtime(a1) ^ xtime(a2) ^ a2 ^ a3;
        t[4 * c + 2] = a0 ^ a1 ^ xtime(a2) ^ xtime(a3) ^ a3;
        t[4 * c + 3] = xtime(a0) ^ a0 ^ a1 ^ a2 ^ xtime(a3);
      }
    }
    s = t.map((b, i) => b ^ roundKeys[r][i]);
  }
  return s;
}

function nodeCipher(name: string, key: Uint8Array, iv: Uint8Array | null, data: Uint8Array, encrypt: boolean): Uint8Array {
  const c = encrypt ? crypto.createCipheriv(name, key, iv) : crypto.createDecipheriv(name, key, iv);
  c.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
}

/** CTR or CFB-8 decryption as 2v29 does it: the forward cipher over the decryption key schedule. */
function brokenStreamDecrypt(mode: "CTR" | "CFB", key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const rk = decryptionRoundKeys(key);
  const out = new Uint8Array(data.length);
  if (mode === "CTR") {
    const counter = new Uint8Array(16); // the iv is ignored
    let stream: Uint8Array = new Uint8Array(16);
    for (let i = 0; i < data.length; i++) {
      if (i % 16 === 0) {
        stream = forwardCipher(rk, counter);
        for (let k = 15; k >= 0 && ++counter[k] === 256; k--) counter[k] = 0;
      }
      out[i] = data[i] ^ stream[i % 16];
    }
  } else {
    let reg = iv.slice();
    for (let i = 0; i < data.length; i++) {
      out[i] = data[i] ^ forwardCipher(rk, reg)[0];
      reg = Uint8Array.of(...reg.subarray(1), data[i]);
    }
  }
  return out;
}

const MODES = ["CBC", "CFB", "CTR", "OFB", "ECB"];

function aesCrypt(realm: Realm, message: unknown, key: unknown, options: unknown, encrypt: boolean): ArrayBuffer | undefined {
  const iv = new Uint8Array(16);
  let mode = "CBC";
  if (typeof options === "object" && options !== null) {
    const o = options as { iv?: unknown; mode?: unknown };
    if (o.iv !== undefined) iv.set((bytesOf(o.iv, realm) ?? new Uint8Array(0)).subarray(0, 16));
    if (o.mode !== undefined) {
      if (!MODES.includes(String(o.mode))) throw realm.error("Error", `Unknown Crypto mode ${JSON.stringify(String(o.mode))}`);
      mode = String(o.mode);
    }
  } else if (options !== undefined) {
    realm.print("ERROR: 'options' must be undefined, or an Object");
    return undefined;
  }
  const msg = bytesOf(message, realm);
  const k = bytesOf(key, realm);
  if (!msg || !k) return undefined;
  if (![16, 24, 32].includes(k.length)) {
    realm.print("ERROR: Unknown error: -0x20"); // MBEDTLS_ERR_AES_INVALID_KEY_LENGTH
    return undefined;
  }
  const bits = k.length * 8;
  let out: Uint8Array;
  if (mode === "CBC") {
    if (msg.length % 16 !== 0) {
      realm.print("ERROR: Invalid input length");
      return undefined;
    }
    out = nodeCipher(`aes-${bits}-cbc`, k, iv, msg, encrypt);
  } else if (mode === "CFB") {
    out = encrypt ? nodeCipher(`aes-${bits}-cfb8`, k, iv, msg, true) : brokenStreamDecrypt("CFB", k, iv, msg);
  } else if (mode === "CTR") {
    out = encrypt ? nodeCipher(`aes-${bits}-ctr`, k, new Uint8Array(16), msg, true) : brokenStreamDecrypt("CTR", k, iv, msg);
  } else if (mode === "ECB") {
    out = new Uint8Array(msg.length);
    const whole = msg.length - (msg.length % 16);
    out.set(nodeCipher(`aes-${bits}-ecb`, k, null, msg.subarray(0, whole), encrypt));
  } else {
    realm.print("ERROR: Feature unavailable"); // OFB: parsed, then not implemented
    return undefined;
  }
  return realm.buffer(out);
}

function ccmCrypt(realm: Realm, message: unknown, key: unknown, nonce: unknown, tagArg: unknown, encrypt: boolean): unknown {
  const isBufferLike = Array.isArray(nonce) || ArrayBuffer.isView(nonce) || Object.prototype.toString.call(nonce) === "[object ArrayBuffer]";
  const n = isBufferLike ? bytesOf(nonce, realm) : undefined;
  if (!n || n.length < 2 || n.length > 13) {
    realm.print("ERROR: Bad input data");
    return undefined;
  }
  const msg = bytesOf(message, realm);
  const k = bytesOf(key, realm);
  if (!msg || !k) return undefined;
  const badInput = () => {
    realm.print("ERROR: Unknown error: -0xd"); // MBEDTLS_ERR_CCM_BAD_INPUT from mbedtls itself
    return undefined;
  };
  if (![16, 24, 32].includes(k.length) || n.length < 7) return badInput();
  const name = `aes-${k.length * 8}-ccm`;
  if (encrypt) {
    const tagLen = typeof tagArg === "number" || typeof tagArg === "boolean" ? Math.trunc(Number(tagArg)) : NaN;
    if (!(tagLen >= 4 && tagLen <= 16 && tagLen % 2 === 0)) {
      realm.print("ERROR: Bad input data");
      return undefined;
    }
    const c = crypto.createCipheriv(name as crypto.CipherCCMTypes, k, n, { authTagLength: tagLen });
    const data = Buffer.concat([c.update(msg), c.final()]);
    const result = realm.object();
    result.data = realm.buffer(data);
    result.tag = realm.buffer(c.getAuthTag());
    return result;
  }
  const tag = bytesOf(tagArg, realm);
  if (!tag) {
    realm.print("ERROR: Bad input data");
    return undefined;
  }
  if (tag.length < 4 || tag.length > 16 || tag.length % 2 !== 0) return badInput();
  try {
    const d = crypto.createDecipheriv(name as crypto.CipherCCMTypes, k, n, { authTagLength: tag.length });
    d.setAuthTag(tag);
    return realm.buffer(Buffer.concat([d.update(msg), d.final()]));
  } catch {
    realm.print("ERROR: Authenticated decryption failed");
    return undefined;
  }
}

/** require("crypto") for a board with these natives, or undefined where the board has no crypto module. */
export function cryptoModule(native: NativeCrypto, realm: Realm): Record<string, unknown> | undefined {
  if (!native.sha256 && !native.aes && !native.aesCcm) return undefined;
  const hash = (algo: string) => (message: unknown) => {
    const m = bytesOf(message, realm);
    return m ? realm.buffer(crypto.createHash(algo).update(m).digest()) : undefined;
  };
  const mod = realm.object();
  mod.SHA1 = hash("sha1");
  if (native.sha256) {
    mod.SHA224 = hash("sha224");
    mod.SHA256 = hash("sha256");
  }
  if (native.aes || native.aesCcm) {
    const aes = realm.object();
    aes.encrypt = (m: unknown, k: unknown, o: unknown) => aesCrypt(realm, m, k, o, true);
    aes.decrypt = (m: unknown, k: unknown, o: unknown) => aesCrypt(realm, m, k, o, false);
    if (native.aesCcm) {
      aes.ccmEncrypt = (m: unknown, k: unknown, n: unknown, t: unknown) => ccmCrypt(realm, m, k, n, t, true);
      aes.ccmDecrypt = (m: unknown, k: unknown, n: unknown, t: unknown) => ccmCrypt(realm, m, k, n, t, false);
    }
    mod.AES = aes;
  }
  return mod;
}

/**
 * require("heatshrink") as libs/compression/jswrap_heatshrink.c: anything iterable in (a string, an array,
 * a typed array), an ArrayBuffer out; anything else throws a TypeError. (Out of memory the firmware returns
 * undefined; the sandbox has the memory.)
 */
export function heatshrinkModule(realm: Realm): Record<string, unknown> {
  const input = (v: unknown) => {
    if (typeof v !== "string" && !Array.isArray(v) && !ArrayBuffer.isView(v) && Object.prototype.toString.call(v) !== "[object ArrayBuffer]")
      throw realm.error("TypeError", `Expecting something iterable, got ${typeof v}`);
    return bytesOf(v, realm)!;
  };
  const mod = realm.object();
  mod.compress = (data: unknown) => realm.buffer(new Uint8Array(hostCodec.compress(input(data))));
  mod.decompress = (data: unknown) => realm.buffer(new Uint8Array(hostCodec.decompress(input(data))!));
  return mod;
}

/** require("Storage"): files are byte strings in memory. */
export function storageModule(files: Map<string, string>, realm: Realm): Record<string, unknown> {
  const asString = (data: unknown) => String.fromCharCode(...(bytesOf(data, realm) ?? []));
  const checkName = (name: string) => {
    if (name.length > 28) throw realm.error("Error", "File name too long");
  };
  const mod = realm.object();
  Object.assign(mod, {
    read: (name: string, offset = 0, length?: number) => {
      const f = files.get(name);
      return f === undefined ? undefined : f.substr(offset, length ?? f.length);
    },
    readArrayBuffer: (name: string) => {
      const f = files.get(name);
      return f === undefined ? undefined : realm.buffer(Uint8Array.from(f, (c) => c.charCodeAt(0)));
    },
    readJSON: (name: string, noExceptions?: boolean) => {
      const f = files.get(name);
      if (f === undefined) return undefined;
      try {
        return JSON.parse(f);
      } catch (e) {
        if (noExceptions) return undefined;
        throw realm.error("Error", "JSON parse error: " + (e as Error).message);
      }
    },
    write: (name: string, data: unknown, offset?: number, size?: number) => {
      checkName(name);
      const s = asString(data);
      if (offset === undefined) files.set(name, s);
      else {
        // A file written in parts is created at its full size, erased flash (0xFF) until written.
        const old = files.get(name) ?? "\xff".repeat(size ?? offset + s.length);
        files.set(name, old.slice(0, offset) + s + old.slice(offset + s.length));
      }
      return true;
    },
    writeJSON: (name: string, value: unknown) => {
      checkName(name);
      files.set(name, JSON.stringify(value));
      return true;
    },
    erase: (name: string) => {
      files.delete(name);
    },
    eraseAll: () => files.clear(),
    list: (pattern?: { test(s: string): boolean }) => [...files.keys()].filter((n) => !pattern || pattern.test(n)),
    getFree: () => 40000 - [...files.values()].reduce((n, f) => n + f.length + 32, 0),
    compact: () => undefined,
  });
  return mod;
}
