// The board profiles provisioning accepts: boards/*.json, read once. A profile is data (firmware/board.ts);
// here only what provisioning needs is checked: its name, its handshake mode, and the fields the device
// configuration is derived from.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BoardProfile } from "../../firmware/board";

export const BOARDS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "boards");

export type Boards = ReadonlyMap<string, BoardProfile>;

export function loadBoards(dir = BOARDS_DIR): Boards {
  const out = new Map<string, BoardProfile>();
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith(".json")) continue;
    let p: BoardProfile;
    try {
      p = JSON.parse(readFileSync(join(dir, file), "utf8")) as BoardProfile;
    } catch (e) {
      throw new Error(`boards: ${file}: ${(e as Error).message}`);
    }
    if (typeof p.name !== "string" || p.name === "") throw new Error(`boards: ${file} has no "name"`);
    if (p.handshake !== "dh" && p.handshake !== "psk") throw new Error(`boards: ${file}: "handshake" must be "dh" or "psk"`);
    out.set(p.name, p);
  }
  if (out.size === 0) throw new Error(`boards: no board profiles in ${dir}`);
  return out;
}

/**
 * The handshake order boards are provisioned with: I (the device speaks first) on every link. The device
 * runtime starts a handshake as soon as any link is up (a BLE connection, or LoRa at boot), which is what
 * LoRa needs (a class A gateway cannot speak first) and what lets one session move between BLE and LoRa;
 * the gateway's responders answer order I. docs/PROTOCOL.md 2.1 and 5.4.
 */
export function boardOrder(b: BoardProfile): "R" | "I" {
  void b;
  return "I";
}

/** Modes a board may be provisioned in: psk everywhere; dh only where the profile's handshake is dh. */
export function boardModes(b: BoardProfile): ("dh" | "psk")[] {
  return b.handshake === "dh" ? ["dh", "psk"] : ["psk"];
}
