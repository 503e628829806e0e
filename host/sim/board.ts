// What the fleet runner needs from a simulated board, whichever interpreter runs its bundle.
import type { BoardProfile } from "../../firmware/board";
import type { VirtualClock } from "./clock";
import type { BleMedium } from "./radio-ble";
import type { LoraChannel } from "./radio-lora";
import { prng } from "./random";

export type BoardWorld = { clock: VirtualClock; ble: BleMedium | undefined; lora: LoraChannel | undefined; rand: () => number };

/**
 * A board's hardware random source (E.hwRand, sodium.random.random: signed 32-bit values), seeded from the
 * run's: the firmware draws its timing from it (the first reading's phase, its LoRa timeouts, its handshake
 * backoff), so a run replays exactly from its seed only if these do too.
 */
export function hardwareRandom(world: BoardWorld): () => number {
  const r = prng(Math.floor(world.rand() * 2 ** 32));
  return () => Math.floor(r() * 2 ** 32) | 0;
}

/** Memory in the board's own unit: JsVars on Espruino, bytes of Lua heap on NodeMCU. */
export type BoardMemory = { unit: "JsVars" | "bytes"; used: number; peak: number; budget: number };

export interface SimBoard {
  readonly name: string;
  readonly profile: BoardProfile;
  /** Virtual time of the last boot. */
  bootedAt: number;
  /** Set when the board stopped as a real one would (out of memory, a crash at boot). */
  failed: string | undefined;
  /** Errors thrown inside the board's callbacks (Espruino prints them and carries on). */
  errors: string[];
  /** Whatever must be ready before the clock starts (a Lua engine). */
  prepare(): Promise<void>;
  /** Power on: the bundle starts from nothing but its storage. */
  boot(): void;
  /** Power off: timers stop, radios go quiet; storage (flash) survives. */
  powerOff(): void;
  /** The runtime's counters (firmware/runtime/runtime.ts rtReport) as a map. */
  report(): Record<string, string>;
  /** The application sends one message now (firmware/device.ts send): its id, or -1 (off, or refused). */
  send(body: Uint8Array): number;
  memory(): BoardMemory;
  close(): void;
}

export function parseReport(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/**
 * A board's memory over a run: the last sample, the peak, and the board's failure when a sample goes over
 * the budget (the board stops then, as a real one runs out of memory).
 */
export class MemoryMeter {
  used = 0;
  peak = 0;

  constructor(readonly unit: BoardMemory["unit"], readonly budget: number | undefined, private readonly what: string) {}

  /** Records a sample; returns why the board must stop, or undefined. */
  sample(used: number): string | undefined {
    this.used = used;
    if (used > this.peak) this.peak = used;
    return this.budget !== undefined && used > this.budget ? `Out of memory: ${used} ${this.what} needed, the board has ${this.budget}` : undefined;
  }

  memory(): BoardMemory {
    return { unit: this.unit, used: this.used, peak: this.peak, budget: this.budget ?? Infinity };
  }
}
