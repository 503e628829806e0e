// Espruino's hardware layer: native crypto as a CryptoProvider, and the board's radios, timers, storage
// and sensor as a Hal. `require` is passed in by the boot line (`sesame.boot({ require: require })`) rather
// than called here, so the bundle holds no module loader of its own.
//
// Two firmware limits shape this: AES.ccmEncrypt takes no associated data, so it cannot authenticate an SSE
// header and is not used (CCM runs in TypeScript over native AES-ECB blocks instead); and ECB input that is
// not a multiple of 16 bytes silently returns zeros, so only whole blocks are ever passed.
import { Bytes } from "#target";
import { BoardProfile, NativeCrypto } from "../board";
import { BLE_NOTIFY_UUID, BLE_SERVICE_UUID, BLE_WRITE_UUID } from "../link/ble";
import { SeqStorage } from "../session/seqstore";
import { BleHw, Hal, LoraHw } from "./hal";
import { ccmAead, CryptoProvider, KeyPair, keyPairWith } from "../crypto/provider";
import { aesBlock, ccmOpen, ccmSeal } from "../crypto/ccm";
import { sha256 } from "../crypto/sha256";
import { Hash, hmac } from "../crypto/hmac";
import { x25519 } from "../crypto/x25519";
import { bytesOfWords } from "./random";
import { Aead } from "../record/record";
import { Codec } from "../record/gpcomp";

/** The parts of Espruino's `require("crypto")` this provider uses. */
export type EspruinoCrypto = {
  SHA256: (this: void, message: Bytes) => ArrayBuffer | undefined;
  AES: { encrypt: (this: void, data: Bytes, key: Bytes, options: { mode: string }) => ArrayBuffer | undefined };
};

/** The natives the boot code passes in: `{ crypto: require("crypto"), hwRand: E.hwRand }`. */
export type Natives = { crypto: EspruinoCrypto; hwRand: () => number };

// The provider is made of plain functions over the natives of the last provider made (a board has one crypto
// module and one entropy source), not of closures: on Espruino each closure costs JsVars for as long as it
// lives (itself, its code, a scope, one per parameter), and a session holds two or three AEADs at a time.
let natives: Natives | undefined = undefined;
let digest: Hash | undefined = undefined;
const ECB = { mode: "ECB" };

// AES.encrypt and SHA256 return their result in a flat string: contiguous JsVars whose second one is at a
// 4-byte-aligned address (one in four with 13-byte JsVars), found by walking the free list; when memory holds
// no such run even after a garbage collection they return undefined, however many JsVars are free. A
// session's churn leaves its free JsVars scattered, so near the limit a record failed in AES with 200 of them
// free. Each native therefore keeps its previous result (wiped) as the room for the next one, and lets it go
// just before the call: a flat string goes back into the free list in one piece, in address order, and its
// ArrayBuffer's JsVar goes to the head before it (the walk never starts a run at the head). Nothing is made
// in between: the result's name is declared first, and the native was taken once at start-up (reading
// `crypto.AES.encrypt` makes a new function JsVar each time). Any other allocation would come first and
// could take the run's first JsVar: `new Uint8Array(n)` makes its constructor, its length and its object.
let aesRoom: ArrayBuffer | undefined = undefined;
let shaRoom: ArrayBuffer | undefined = undefined;
let aesEncrypt: EspruinoCrypto["AES"]["encrypt"] | undefined = undefined;
let sha256Native: EspruinoCrypto["SHA256"] | undefined = undefined;

function ecb(key: Bytes, input: Bytes, out: Bytes): void {
  let raw: ArrayBuffer | undefined = undefined;
  aesRoom = undefined;
  raw = aesEncrypt!(input, key, ECB);
  // Out of memory even so: fail this record with a clear message rather than a TypeError deep in the AEAD.
  if (raw === undefined) throw "crypto: out of memory in AES";
  const r = new Uint8Array(raw);
  for (let i = 0; i < 16; i++) out[i] = r[i];
  r.fill(0);
  aesRoom = raw;
}

/** An AEAD as an object holding its key: seal and open are methods shared by every key. */
type KeyedAead = Aead & { key: Bytes };

function sealMethod(this: KeyedAead, nonce: Bytes, aad: Bytes, plaintext: Bytes): Bytes {
  const key = this.key;
  return ccmSeal((input: Bytes, out: Bytes) => ecb(key, input, out), nonce, aad, plaintext, this.tagLen);
}

function openMethod(this: KeyedAead, nonce: Bytes, aad: Bytes, sealed: Bytes): Bytes | undefined {
  const key = this.key;
  return ccmOpen((input: Bytes, out: Bytes) => ecb(key, input, out), nonce, aad, sealed, this.tagLen);
}

/** CCM over the native AES-ECB. (Aead's callers always call seal and open as its methods.) */
function nativeCcm(key: Bytes, tagLen: number, nonceLen: number): Aead {
  const a: KeyedAead = { tagLen: tagLen, nonceLen: nonceLen, seal: sealMethod as unknown as Aead["seal"], open: openMethod as unknown as Aead["open"], key: key };
  return a;
}

function portableCcm(key: Bytes, tagLen: number, nonceLen: number): Aead {
  return ccmAead(aesBlock(key), tagLen, nonceLen);
}

function nativeSha256(m: Bytes): Bytes {
  let raw: ArrayBuffer | undefined = undefined;
  shaRoom = undefined;
  raw = sha256Native!(m);
  if (raw === undefined) throw "crypto: out of memory in SHA256";
  // Copied out: the caller may keep its digest (a traffic secret), and the room must be free to go.
  const r = new Uint8Array(raw);
  const digest = new Uint8Array(32);
  for (let i = 0; i < 32; i++) digest[i] = r[i];
  r.fill(0);
  shaRoom = raw;
  return digest;
}

function boardHmac(key: Bytes, m: Bytes): Bytes {
  return hmac(digest!, 64, key, m);
}

function boardRandom(n: number): Bytes {
  return bytesOfWords(natives!.hwRand, n);
}

function pskOnly(): never {
  throw "x25519: this board's bundle is built for psk only";
}

function boardKeyPair(): KeyPair {
  return keyPairWith(x25519, boardRandom);
}

// The SESAME_* tests are build-time constants (firmware/features.d.ts): a board whose profile has native
// SHA-256 or AES, or no dh, gets a bundle without the portable code.
export function boardProvider(native: NativeCrypto, n: Natives): CryptoProvider {
  natives = n;
  // Only what the firmware has (an ESP32's has no AES); written out like the tests below, for esbuild to fold.
  aesEncrypt = !SESAME_PORTABLE_AES || native.aes ? n.crypto.AES.encrypt : undefined;
  sha256Native = !SESAME_PORTABLE_SHA256 || native.sha256 ? n.crypto.SHA256 : undefined;
  // Written out at each use, not held in a variable, so that esbuild can fold them and drop the other branch.
  digest = !SESAME_PORTABLE_SHA256 || native.sha256 ? nativeSha256 : sha256;
  return {
    name: "sha256:" + (!SESAME_PORTABLE_SHA256 || native.sha256 ? "native" : "portable") +
      " aes:" + (!SESAME_PORTABLE_AES || native.aes ? "native" : "portable") + " x25519:" + (SESAME_DH ? "portable" : "none"),
    sha256: digest,
    hmac: boardHmac,
    ccm: !SESAME_PORTABLE_AES || native.aes ? nativeCcm : portableCcm,
    x25519: SESAME_DH ? x25519 : pskOnly,
    random: boardRandom,
    keyPair: SESAME_DH ? boardKeyPair : pskOnly,
  };
}

// ---- the hardware layer (firmware/hw/hal.ts) on Espruino's own APIs ------------------------------------

type ServiceUpdate = { [uuid: string]: { [uuid: string]: { value: Bytes; notify: boolean } } };
declare const NRF: {
  setServices: (this: void, services: unknown, options: unknown) => void;
  updateServices: (this: void, update: ServiceUpdate) => void;
  on: (this: void, event: string, cb: (this: void) => void) => void;
};
declare const E: { getTemperature: (this: void) => number; hwRand: (this: void) => number };
declare function getTime(this: void): number;
declare function setInterval(this: void, fn: (this: void) => void, ms: number): unknown;
declare const LED1: { write: (this: void, on: boolean) => void } | undefined;
declare function print(this: void, line: string): void;

/** What the boot line passes in: `sesame.boot({ require: require, lora: <an SX127x driver, if wired> })`. */
export type BootNatives = { require: (this: void, name: string) => unknown; lora: { listen: LoraHw["listen"]; send: LoraHw["send"] } | undefined };

function bleHw(mtu: number): BleHw {
  let connected = false;
  return {
    mtu: mtu,
    serve: (onConnect: (up: boolean) => void, onChunk: (chunk: Bytes) => void) => {
      const svc: { [uuid: string]: unknown } = {};
      const c: { [uuid: string]: unknown } = {};
      c[BLE_NOTIFY_UUID] = { maxLen: mtu - 3, notify: true, readable: true };
      c[BLE_WRITE_UUID] = { maxLen: mtu - 3, writable: true, onWrite: (evt: { data: ArrayBuffer }) => onChunk(new Uint8Array(evt.data)) };
      svc[BLE_SERVICE_UUID] = c;
      // The UART service stays: it is the board's console, and how it is flashed again over Bluetooth.
      NRF.setServices(svc, { advertise: [BLE_SERVICE_UUID], uart: true });
      NRF.on("connect", () => {
        connected = true;
        onConnect(true);
      });
      NRF.on("disconnect", () => {
        connected = false;
        onConnect(false);
      });
    },
    notify: (chunk: Bytes) => {
      if (!connected) return false;
      // Made for each chunk: held between chunks, its two UUID keys would take JsVars all the time.
      const chars: { [uuid: string]: { value: Bytes; notify: boolean } } = {};
      chars[BLE_NOTIFY_UUID] = { value: chunk, notify: true };
      const update: ServiceUpdate = {};
      update[BLE_SERVICE_UUID] = chars;
      try {
        NRF.updateServices(update);
      } catch (e) {
        return false;
      }
      return true;
    },
  };
}

function nowMs(): number {
  return Math.floor(getTime() * 1000);
}

function every(ms: number, fn: () => void): void {
  setInterval(fn, ms);
}

function temperature(): number {
  return Math.round(E.getTemperature() * 100);
}

function led(on: boolean): void {
  if (typeof LED1 !== "undefined") LED1!.write(on);
}

function log(line: string): void {
  print(line);
}

/**
 * The board's hardware layer from Espruino's APIs and the natives the boot line passes in. It makes no
 * closure itself (those it hands out come from the small functions above), so nothing keeps `board` alive.
 */
export function boardHal(board: BoardProfile, n: BootNatives): Hal {
  const ble = board.radios.ble;
  const lora = board.radios.lora;
  return {
    now: nowMs,
    clockStepMs: 1,
    every: every,
    // Storage's own read and write: they take the same arguments and need no `this`.
    storage: n.require("Storage") as SeqStorage,
    provider: boardProvider(board.nativeCrypto, { crypto: n.require("crypto") as EspruinoCrypto, hwRand: E.hwRand }),
    // GPComp: the native module itself (firmware/record/gpcomp.ts Codec), where the firmware has it.
    codec: board.gpcomp === "heatshrink" ? (n.require("heatshrink") as Codec) : undefined,
    ble: ble === undefined ? undefined : bleHw(ble.mtu),
    lora: lora === undefined || n.lora === undefined ? undefined : { listen: n.lora.listen, send: n.lora.send, region: lora.region, dataRate: lora.dataRate },
    sensor: temperature,
    led: led,
    log: log,
  };
}
