// NodeMCU's hardware layer (Lua on ESP32): native crypto as a CryptoProvider, and tmr, file, adc, gpio and
// the LoRa driver as a Hal. The crypto module tables are passed in by the boot line. NodeMCU's `crypto.hash`
// and `crypto.hmac` work on Lua strings, so bytes cross as strings.
//
// X25519: the portable ladder needs 64-bit integers. On a 32-bit-integer build (NodeMCU's default) the
// provider uses `sodium.crypto_scalarmult(n, p)`, a thin binding of libsodium's crypto_scalarmult that the
// sesame firmware image adds to NodeMCU's sodium module; without it a 32-bit build must use `psk` mode.
import { alloc, Bytes, INT32_ONLY } from "#target";
import { BoardProfile, NativeCrypto } from "../board";
import { SeqStorage } from "../session/seqstore";
import { Hal } from "./hal";
import { aesBlock } from "../crypto/ccm";
import { ccmAead, CryptoProvider, keyPairWith } from "../crypto/provider";
import { sha256 } from "../crypto/sha256";
import { hmac } from "../crypto/hmac";
import { x25519 } from "../crypto/x25519";
import { bytesFromWords } from "./random";

/** The parts of NodeMCU's `crypto` and `sodium` modules this provider uses. */
export type Natives = {
  crypto?: { hash: (this: void, algo: string, data: string) => string; hmac: (this: void, algo: string, data: string, key: string) => string };
  sodium?: { random: { random: (this: void) => number }; crypto_scalarmult?: (this: void, n: string, p: string) => string };
};

function toStr(b: Bytes): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function fromStr(s: string): Bytes {
  const out = alloc(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function boardProvider(native: NativeCrypto, m: Natives): CryptoProvider {
  const c = m.crypto;
  const sodium = m.sodium;
  const scalarmult = sodium !== undefined ? sodium.crypto_scalarmult : undefined;
  let xName = "portable";
  let x = x25519;
  if (native.x25519 && scalarmult !== undefined) {
    xName = "native";
    x = (n: Bytes, p: Bytes) => fromStr(scalarmult(toStr(n), toStr(p)));
  } else if (INT32_ONLY) {
    xName = "unavailable";
    x = () => {
      throw "x25519 needs 64-bit Lua integers or sodium.crypto_scalarmult; use psk mode on this board";
    };
  }
  if (sodium === undefined) throw "nodemcu: the sodium module (random numbers) is required";
  const random = bytesFromWords(sodium.random.random);
  const hash = native.sha256 && c !== undefined ? (msg: Bytes) => fromStr(c.hash("sha256", toStr(msg))) : sha256;
  return {
    name: "sha256:" + (native.sha256 && c !== undefined ? "native" : "portable") + " aes:portable x25519:" + xName,
    sha256: hash,
    hmac: native.hmac && c !== undefined
      ? (key: Bytes, msg: Bytes) => fromStr(c.hmac("sha256", toStr(msg), toStr(key)))
      : (key: Bytes, msg: Bytes) => hmac(hash, 64, key, msg),
    ccm: (key: Bytes, tagLen: number, nonceLen: number) => ccmAead(aesBlock(key), tagLen, nonceLen),
    x25519: x,
    random: random,
    keyPair: () => keyPairWith(x, random),
  };
}

// ---- the hardware layer (firmware/hw/hal.ts) on NodeMCU's modules --------------------------------------

type NodeTimer = { alarm: (this: NodeTimer, ms: number, mode: number, fn: (this: void) => void) => boolean };
declare const tmr: { create: (this: void) => NodeTimer; ALARM_AUTO: number };
declare const file: { getcontents: (this: void, name: string) => string | undefined; putcontents: (this: void, name: string, data: string) => boolean };
declare const adc: { read: (this: void, unit: number, channel: number) => number; ADC1: number };
declare const gpio: { write: (this: void, pin: number, level: number) => void };

/** The SX127x binding the sesame firmware image adds: raw frames as Lua strings. */
export type LoraDriver = { listen: (this: void, cb: (this: void, frame: string) => void) => void; send: (this: void, frame: string) => void };

/** What the boot line passes in: `sesame.boot({ crypto = crypto, sodium = sodium, lora = lora })`. */
export type BootNatives = Natives & { lora?: LoraDriver };

/** The clock's resolution: one hardware alarm drives every timer, and the clock counts its ticks. */
const BASE_TICK_MS = 100;

export function boardHal(board: BoardProfile, n: BootNatives): Hal {
  let clock = 0;
  const timers: { ms: number; due: number; fn: (this: void) => void }[] = [];
  tmr.create().alarm(BASE_TICK_MS, tmr.ALARM_AUTO, () => {
    clock = clock + BASE_TICK_MS;
    for (let i = 0; i < timers.length; i++) {
      if (clock >= timers[i].due) {
        timers[i].due = clock + timers[i].ms;
        timers[i].fn();
      }
    }
  });
  const storage: SeqStorage = {
    read: (name: string) => file.getcontents(name),
    write: (name: string, v: string) => void file.putcontents(name, v),
  };
  const lora = board.radios.lora;
  const drv = n.lora;
  return {
    now: () => clock,
    clockStepMs: BASE_TICK_MS,
    every: (ms: number, fn: () => void) => void timers.push({ ms: ms, due: clock + ms, fn: fn }),
    storage: storage,
    provider: boardProvider(board.nativeCrypto, n),
    // GPComp: NodeMCU has no compressor; a Lua board never compresses and refuses records with the bit.
    codec: undefined,
    ble: undefined,
    lora: lora === undefined || drv === undefined ? undefined : {
      listen: (cb: (frame: Bytes) => void) => drv.listen((f: string) => cb(fromStr(f))),
      send: (frame: Bytes) => drv.send(toStr(frame)),
      region: lora.region, dataRate: lora.dataRate,
    },
    sensor: () => adc.read(adc.ADC1, 0),
    led: (on: boolean) => gpio.write(2, on ? 1 : 0),
    log: (line: string) => print(line),
  };
}
