// Espruino boards on the real interpreter (host/sim/espruino-memory.ts), when env ESPRUINO_BIN names the
// Linux build: per board profile with target "espruino", the bundle loaded from Storage, then a whole
// session (handshake, records both ways, a command, a rekey on both sides) driven through the board's boot
// path over a fake NRF. SESAME_BOARDS=puckjs,mdbt42q limits the boards; SESAME_PEAK=0 skips the
// high-water search (several interpreter runs per board).
import { readFileSync } from "node:fs";
import type { BoardProfile } from "../../firmware/board";
import { BoardFigures, measureEspruinoBoard } from "../../host/sim/espruino-memory";
import { espruinoBinary, espruinoUnavailableReason } from "../../host/sim/espruino-native";
import { loadBoards, REPO_ROOT } from "../build";
import { table } from "../lib/measure";

export function boardsTable(rows: BoardFigures[]): string {
  return table(
    ["board", "bundle B", "JsVars loaded", "JsVars peak in session", "idle after session", "budget", "half", "handshake ms (device)", "handshake ms (wall)", "ms per sealed record"],
    rows.map((r) => [
      r.board, r.bundleBytes, r.loaded, r.peak === undefined ? "-" : `${r.peak}${r.peakResolution > 1 ? ` (±${r.peakResolution})` : ""}${r.peak > r.budget / 2 ? " OVER" : ""}`,
      r.idle, r.budget, Math.floor(r.budget / 2), r.handshakeMs.toFixed(0), r.handshakeWallMs.toFixed(0), r.recordMs.toFixed(1),
    ]),
  );
}

export async function benchBoards(distDir = "dist/espruino"): Promise<string> {
  if (!espruinoBinary()) return `skipped: ${espruinoUnavailableReason()}`;
  const only = (process.env.SESAME_BOARDS ?? "").split(",").filter((s) => s);
  const boards: BoardProfile[] = loadBoards(REPO_ROOT).filter((b) => b.target === "espruino" && (only.length === 0 || only.includes(b.name)));
  const rows: BoardFigures[] = [];
  const failed: string[] = [];
  for (const b of boards) {
    const code = readFileSync(`${distDir}/${b.name}.js`, "utf8");
    try {
      rows.push(await measureEspruinoBoard(b, code, { peak: process.env.SESAME_PEAK !== "0", log: (l) => process.stderr.write(l + "\n") }));
    } catch (e) {
      failed.push(`${b.name}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return (
    boardsTable(rows) +
    failed.map((f) => "\nFAILED " + f).join("") +
    "\nJsVars counted above the empty interpreter (Espruino 2v29 Linux build: 27-byte JsVars, so strings and typed arrays" +
    "\ntake fewer than on an nRF52). Peak: the smallest room the whole session fits in (binary search on a filler; the" +
    "\ntable grows only when full after a GC). Handshake (device): interpreter time in the device's calls and timers" +
    "\nfrom connect to ready. Record: one sesame.send (queue, seal, BLE chunks). Goal: peak <= half the budget."
  );
}
