// What the fleet runner needs from a simulated board, whichever interpreter runs its bundle.
import type { BoardProfile } from "../../firmware/board";
import type { VirtualClock } from "./clock";
import type { BleMedium } from "./radio-ble";
import type { LoraChannel } from "./radio-lora";

export type BoardWorld = { clock: VirtualClock; ble: BleMedium | undefined; lora: LoraChannel | undefined; rand: () => number };

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
