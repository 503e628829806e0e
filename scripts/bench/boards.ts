// Espruino boards on the real interpreter (host/sim/espruino-memory.ts), when env ESPRUINO_BIN (and, for
// the board's own JsVar size, ESPRUINO_BOARD_BINS) names Linux builds: per board profile with target
// "espruino", the bundle loaded from Storage, then a whole session (handshake, records both ways, a command,
// a rekey on both sides, a power cycle and resume) driven through the board's boot path over a fake NRF.
// SESAME_BOARDS=puckjs,mdbt42q limits the boards; SESAME_PEAK=0 skips the high-water search (several
// interpreter runs per board).
import type { BoardProfile } from "../../firmware/board";
import { BoardFigures, measureEspruinoBoard } from "../../host/sim/espruino-memory";
import { espruinoBinary, espruinoUnavailableReason } from "../../host/sim/espruino-native";
import { loadBoards, REPO_ROOT } from "../build";
import { readBoardFiles } from "../lib/espruino-modules";
import { table } from "../lib/measure";

/** JsVars left for the board's own application while the session is at its peak. */
export function appShare(r: BoardFigures): number | undefined {
  return r.peak === undefined ? undefined : r.budget - r.empty - r.peak;
}

export function boardsTable(rows: BoardFigures[]): string {
  return table(
    ["board", "JsVar B (board)", "bundle B", "JsVars loaded", "JsVars peak in session", "idle after session", "budget", "half", "left for the application", "handshake ms (device)", "handshake ms (wall)", "ms per sealed record"],
    rows.map((r) => [
      r.board, `${r.interpreter.blocksize} (${r.boardJsVarBytes})`, r.bundleBytes, r.loaded,
      r.peak === undefined ? "-" : `${r.peak}${r.peakResolution > 1 ? ` (±${r.peakResolution})` : ""}${r.peak > r.budget / 2 ? " OVER" : ""}`,
      r.idle, r.budget, Math.floor(r.budget / 2), appShare(r) ?? "-", r.handshakeMs.toFixed(0), r.handshakeWallMs.toFixed(0), r.recordMs.toFixed(1),
    ]),
  );
}

/** What the interpreter still does differently from the board, per build used. */
function differences(rows: BoardFigures[]): string {
  const builds = new Map<string, BoardFigures[]>();
  for (const r of rows) builds.set(r.interpreter.bin, [...(builds.get(r.interpreter.bin) ?? []), r]);
  const lines: string[] = [];
  for (const [bin, rs] of builds) {
    const i = rs[0].interpreter;
    const exact = rs.every((r) => i.fixed && i.blocksize === r.boardJsVarBytes);
    lines.push(`${rs.map((r) => r.board).join(", ")}: Espruino ${i.version} Linux build ${bin}: ${i.blocksize}-byte JsVars, ` +
      (i.fixed ? `a fixed table of ${i.total}` : "a table that doubles when full") +
      (exact ? " (the board's JsVar size: strings and typed arrays take as many JsVars as on the board)."
        : `; the boards' JsVars are ${[...new Set(rs.map((r) => r.boardJsVarBytes))].join(" and ")} bytes, so strings and typed arrays` +
          " take fewer JsVars here than on the board (set ESPRUINO_BOARD_BINS to a 32-bit build with a fixed table, see README)."));
  }
  return lines.join("\n");
}

export async function benchBoards(distDir = "dist/espruino"): Promise<string> {
  if (!espruinoBinary() && !process.env.ESPRUINO_BOARD_BINS) return `skipped: ${espruinoUnavailableReason()}`;
  const only = (process.env.SESAME_BOARDS ?? "").split(",").filter((s) => s);
  const boards: BoardProfile[] = loadBoards(REPO_ROOT).filter((b) => b.target === "espruino" && (only.length === 0 || only.includes(b.name)));
  const rows: BoardFigures[] = [];
  const failed: string[] = [];
  for (const b of boards) {
    try {
      rows.push(await measureEspruinoBoard(b, readBoardFiles(distDir, b.name), { peak: process.env.SESAME_PEAK !== "0", log: (l) => process.stderr.write(l + "\n") }));
    } catch (e) {
      failed.push(`${b.name}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return (
    boardsTable(rows) +
    failed.map((f) => "\nFAILED " + f).join("") +
    "\n" + differences(rows) +
    "\nStill not the board: the Linux build's built-ins and its Storage (a file read through flash strings; on the board a" +
    "\nmemory-mapped one: the same JsVars per string), and NRF is a JavaScript fake whose own JsVars are left out of the figures." +
    "\nJsVars counted above the empty interpreter with the driver defined. Peak: the smallest room the whole session fits in" +
    "\n(binary search on a filler). Left for the application: budget - peak - what the empty interpreter holds; the example" +
    "\napplication (firmware/app/) is in the peak. Handshake (device): interpreter time in the device's calls and timers from" +
    "\nconnect to ready. Record: one sesame.send (queue, seal, BLE chunks). Goal: peak <= half the budget."
  );
}
