// The hardware layer: what the device runtime needs from a board, and nothing else. Each board family fills
// it from its real APIs (firmware/hw/espruino.ts: NRF, E, require("Storage"), require("crypto"), setInterval;
// firmware/hw/nodemcu.ts: tmr, file, crypto, sodium, the LoRa driver); the simulator gives the same APIs
// to the built bundles, so the same hardware layer runs there.
import { Bytes } from "#target";
import { CryptoProvider } from "../crypto/provider";
import { Codec } from "../record/gpcomp";
import { SeqStorage } from "../session/seqstore";

/** A BLE peripheral offering the sesame GATT service (firmware/link/ble.ts has the UUIDs). */
export type BleHw = {
  /** Starts advertising the service: `onConnect` on each connection change, `onChunk` for each write. */
  serve: (this: void, onConnect: (this: void, up: boolean) => void, onChunk: (this: void, chunk: Bytes) => void) => void;
  /** Sends one chunk as a notification; false when no central is connected. */
  notify: (this: void, chunk: Bytes) => boolean;
  /** The ATT MTU the board negotiates. */
  mtu: number;
};

/** A LoRa radio (SX127x class) in raw-frame mode. */
export type LoraHw = {
  /** Starts receiving between transmissions: `onFrame` for each frame heard. */
  listen: (this: void, onFrame: (this: void, frame: Bytes) => void) => void;
  /** Transmits one frame now. The runtime has already checked its size and the duty cycle. */
  send: (this: void, frame: Bytes) => void;
  region: string;
  dataRate: number;
};

export type Hal = {
  /** Milliseconds since boot. */
  now: (this: void) => number;
  /** How far behind the true time `now` can read: the step its clock counts in (the LoRa duty gate allows for it). */
  clockStepMs: number;
  /** Calls `fn` every `ms` milliseconds. */
  every: (this: void, ms: number, fn: (this: void) => void) => void;
  storage: SeqStorage;
  provider: CryptoProvider;
  /** GPComp's heatshrink, where the board's firmware has it (firmware/record/gpcomp.ts). */
  codec: Codec | undefined;
  ble: BleHw | undefined;
  lora: LoraHw | undefined;
  /** The example application's sensor (a temperature in hundredths of a degree, say). */
  sensor: (this: void) => number;
  led: (this: void, on: boolean) => void;
  log: (this: void, line: string) => void;
};
