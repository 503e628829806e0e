// The Storage files of a board's Espruino bundle: sesame.js, which stays in RAM once loaded, and the modules
// scripts/lib/espruino-split.ts moves out of it, each loaded only while its phase runs:
//
//   boot   everything only boot() reaches: the hardware layer's set-up, the configuration parser, the runtime's
//          construction, a saved session's restoration, the sensor's start; and what only the REPL's
//          sesame.report() and sesame.boardProvider() use
//   hs     everything only a handshake reaches: starting one, answering the gateway, confirming the session
//          (the psk and dh handshakes, the transcript, the new session's keys)
//
// In dist/espruino/ a board's modules are <board>.<name>.js next to <board>.js; on the board they are the
// Storage files sesame.<name>.
import * as fs from "node:fs";
import * as path from "node:path";
import { BUNDLE_FILE } from "./flash-espruino";
import { ModuleSpec, storageName } from "./espruino-split";

export const ESPRUINO_MODULES: ModuleSpec[] = [
  { name: "boot", roots: ["firmware/device.ts:boot", "firmware/device.ts:report", "firmware/device.ts:boardProvider"] },
  {
    name: "hs",
    roots: ["firmware/session/endpoint.ts:epStart", "firmware/session/endpoint.ts:answer", "firmware/session/endpoint.ts:respond", "firmware/session/endpoint.ts:confirm"],
  },
];

/** dist/espruino/<board>.<module>.js */
export function moduleFile(distDir: string, board: string, module: string): string {
  return path.join(distDir, `${board}.${module}.js`);
}

/** A built board's Storage files (Storage name -> contents, latin1) from the build directory. */
export function readBoardFiles(distDir: string, board: string): Record<string, string> {
  const files: Record<string, string> = { [BUNDLE_FILE]: fs.readFileSync(path.join(distDir, board + ".js"), "latin1") };
  for (const m of ESPRUINO_MODULES) {
    const f = moduleFile(distDir, board, m.name);
    if (fs.existsSync(f)) files[storageName(m.name)] = fs.readFileSync(f, "latin1");
  }
  return files;
}
