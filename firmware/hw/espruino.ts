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
import { ccmAead, CryptoProvider, keyPairWith } from "../crypto/provider";
import { aesBlock, BlockEncrypt } from "../crypto/ccm";
import { sha256 } from "../crypto/sha256";
import { hmac } from "../crypto/hmac";
import { x25519 } from "../crypto/x25519";
import { bytesFromWords } from "./random";
import { Codec } from "../record/gpcomp";

/** The parts of Espruino's `require("crypto")` this provider uses. */
export type EspruinoCrypto = {
  SHA256: (this: void, message: Bytes) => ArrayBuffer;
  AES: { encrypt: (this: void, data: Bytes, key: Bytes, options: { mode: string }) => ArrayBuffer | undefined };
};

function nativeBlock(c: EspruinoCrypto, key: Bytes): BlockEncrypt {
  const opts = { mode: "ECB" };
  return (input: Bytes, out: Bytes) => {
    const raw = c.AES.encrypt(input, key, opts);
    // Near the memory limit Espruino prints "Not enough memory for result" and returns undefined: fail
    // this record with a clear message rather than a TypeError deep in the AEAD.
    if (raw === undefined) throw "crypto: out of memory in AES";
    const r = new Uint8Array(raw);
    for (let i = 0; i < 16; i++) out[i] = r[i];
  };
}

/** The natives the boot code passes in: `{ crypto: require("crypto"), hwRand: E.hwRand }`. */
export type Natives = { crypto: EspruinoCrypto; hwRand: () => number };

function noX25519(): Bytes {
  throw "x25519: this board's bundle is built for psk only";
}

// The SESAME_* tests are build-time constants (firmware/features.d.ts): a board whose profile has native
// SHA-256 or AES, or no dh, gets a bundle without the portable code.
export function boardProvider(native: NativeCrypto, n: Natives): CryptoProvider {
  const c = n.crypto;
  const random = bytesFromWords(n.hwRand);
  // Written out at each use, not held in a variable, so that esbuild can fold them and drop the other branch.
  const hash = !SESAME_PORTABLE_SHA256 || native.sha256 ? (m: Bytes) => new Uint8Array(c.SHA256(m)) : sha256;
  const x = SESAME_DH ? x25519 : noX25519;
  return {
    name: "sha256:" + (!SESAME_PORTABLE_SHA256 || native.sha256 ? "native" : "portable") +
      " aes:" + (!SESAME_PORTABLE_AES || native.aes ? "native" : "portable") + " x25519:" + (SESAME_DH ? "portable" : "none"),
    sha256: hash,
    hmac: (key: Bytes, m: Bytes) => hmac(hash, 64, key, m),
    ccm: (key: Bytes, tagLen: number, nonceLen: number) =>
      ccmAead(!SESAME_PORTABLE_AES || native.aes ? nativeBlock(c, key) : aesBlock(key), tagLen, nonceLen),
    x25519: x,
    random: random,
    keyPair: () => keyPairWith(x, random),
  };
}

// ---- the hardware layer (firmware/hw/hal.ts) on Espruino's own APIs ------------------------------------

type StorageModule = { read: (this: void, name: string) => string | undefined; write: (this: void, name: string, data: string) => boolean };
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
  const update: ServiceUpdate = {};
  const chars: { [uuid: string]: { value: Bytes; notify: boolean } } = {};
  update[BLE_SERVICE_UUID] = chars;
  return {
    mtu: mtu,
    serve: (onConnect: (up: boolean) => void, onChunk: (chunk: Bytes) => void) => {
      const svc: { [uuid: string]: unknown } = {};
      const c: { [uuid: string]: unknown } = {};
      c[BLE_NOTIFY_UUID] = { value: [0], maxLen: mtu - 3, notify: true, readable: true };
      c[BLE_WRITE_UUID] = { value: [0], maxLen: mtu - 3, writable: true, onWrite: (evt: { data: ArrayBuffer }) => onChunk(new Uint8Array(evt.data)) };
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
      chars[BLE_NOTIFY_UUID] = { value: chunk, notify: true };
      try {
        NRF.updateServices(update);
      } catch (e) {
        return false;
      }
      return true;
    },
  };
}

/** The board's hardware layer from Espruino's APIs and the natives the boot line passes in. */
export function boardHal(board: BoardProfile, n: BootNatives): Hal {
  const st = n.require("Storage") as StorageModule;
  const storage: SeqStorage = { read: (name: string) => st.read(name), write: (name: string, v: string) => void st.write(name, v) };
  const natives: Natives = { crypto: n.require("crypto") as EspruinoCrypto, hwRand: E.hwRand };
  const ble = board.radios.ble;
  const lora = board.radios.lora;
  return {
    now: () => Math.floor(getTime() * 1000),
    every: (ms: number, fn: () => void) => void setInterval(fn, ms),
    storage: storage,
    provider: boardProvider(board.nativeCrypto, natives),
    // GPComp: the native module itself (firmware/record/gpcomp.ts Codec), where the firmware has it.
    codec: board.gpcomp === "heatshrink" ? (n.require("heatshrink") as Codec) : undefined,
    ble: ble === undefined ? undefined : bleHw(ble.mtu),
    lora: lora === undefined || n.lora === undefined ? undefined : { listen: n.lora.listen, send: n.lora.send, region: lora.region, dataRate: lora.dataRate },
    sensor: () => Math.round(E.getTemperature() * 100),
    led: (on: boolean) => {
      if (typeof LED1 !== "undefined") LED1!.write(on);
    },
    log: (line: string) => print(line),
  };
}
