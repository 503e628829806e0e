// A board's bundle on a real Espruino interpreter (a Linux build), loaded and run the way a board runs it,
// for the figures of issues 4 and 11: JsVars after loading the bundle from Storage, the JsVar high-water
// mark of a whole session (host/sim/espruino-session.ts: handshake, records both ways, a command, a rekey,
// a power cycle and resume), what that leaves for the board's own application, the handshake time and the
// time per sealed record.
//
// Which interpreter: a board's JsVars are 12 to 16 bytes (13 on a Puck.js or MDBT42Q, 14 on a Bangle.js 2 or
// an ESP32: the reference width that counts the table, see boardJsVarBytes), the Linux build's default 27
// (64-bit, 32-bit references, a table that doubles when full). Strings and typed arrays take JsVars in
// proportion to their bytes, so the default build undercounts them. A 32-bit build with a fixed table
// (`BOARD=LINUX VARIABLES=4000 DEFINES=-DUSE_CALLFUNCTION_HACK ARCHFLAGS=-m32 make`) has the board's JsVar:
// ESPRUINO_BOARD_BINS names such builds (comma-separated) and each board is measured on the one whose
// JsVar size is the board's; without one, on ESPRUINO_BIN, and the figures say so.
//
// The high-water mark: a run first takes a known number of JsVars (a filler array) and then runs the
// session; a binary search over the filler finds the smallest room the whole session fits in, transient
// buffers included (sampling process.memory() between steps would miss those). "Fits": no allocation
// failed (Espruino's MEMORY error flag, an uncaught error such as AES finding no room for its result) and,
// on a resizable table, the table did not grow (it grows only when full after a garbage collection). The
// figure counts every JsVar above the interpreter's state once the driver is defined: the bundle's code, the
// runtime, the session and the example application.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BoardProfile } from "../../firmware/board";
import { interpreterInfo, InterpreterInfo, writeStorage } from "./espruino-console";
import { espruinoBinary, espruinoUnavailableReason } from "./espruino-native";
import { sessionKeys, sessionRun } from "./espruino-session";

export type BoardFigures = {
  board: string;
  /** Bytes of the bundle's Storage files (code only; not the configuration). */
  bundleBytes: number;
  /** The interpreter the figures come from. */
  interpreter: InterpreterInfo & { bin: string };
  /** The board's own JsVar size (bytes). */
  boardJsVarBytes: number;
  /** JsVars the bundle takes once loaded from Storage (before boot). */
  loaded: number;
  /** JsVars in use at the session's high-water mark (bundle included), or undefined when not searched. */
  peak: number | undefined;
  /** Resolution of `peak` (the filler step where the search stopped). */
  peakResolution: number;
  /** JsVars in use (after a garbage collection) at the end of the session. */
  idle: number;
  /** The profile's memory.jsVars. */
  budget: number;
  /** JsVars the empty interpreter itself holds (counted out of the budget too). */
  empty: number;
  /** Interpreter time spent on the device side from connect to session ready (ms). */
  handshakeMs: number;
  /** Wall time from connect to ready, gateway and pipes included (ms). */
  handshakeWallMs: number;
  /** Median interpreter time of one `sesame.send` (queue, seal, BLE chunks, notify) (ms). */
  recordMs: number;
  runs: number;
  /** JsVars in use (after a garbage collection) between the steps of the first run. */
  samples: [string, number][];
};

export type MeasureOptions = {
  /** Search the high-water mark (several runs); default true. */
  peak?: boolean;
  /** Stop the search when the filler interval is this narrow (JsVars); default 4. */
  resolution?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Timeout of one run (ms). */
  runTimeoutMs?: number;
  /** Runs a room must pass to count as enough (default 3). */
  trials?: number;
};

/** What a run that ran out of room says: an allocation failed, or a native call found no buffer for its result. */
const MEMORY_FAILURE = /OUT OF MEMORY|out of memory|MEMORY|Unsupported first argument of type undefined|Not enough memory/;

/**
 * A board's JsVar size in bytes: Espruino (src/jsutils.h) uses references just wide enough to count the
 * table, packed with the refcount, flags and 4 bytes of data on a 32-bit chip: 12 bytes up to 2047 JsVars,
 * 13 up to 8191, 14 up to 16383, 16 above.
 */
export function boardJsVarBytes(jsVars: number): number {
  return jsVars <= 2047 ? 12 : jsVars <= 8191 ? 13 : jsVars <= 16383 ? 14 : 16;
}

/** The interpreter builds on offer: ESPRUINO_BOARD_BINS (comma-separated), then ESPRUINO_BIN. */
function candidates(): string[] {
  const list = (process.env.ESPRUINO_BOARD_BINS ?? "").split(",").map((s) => s.trim()).filter((s) => s);
  const main = espruinoBinary();
  for (const b of list) {
    try {
      fs.accessSync(b, fs.constants.X_OK);
    } catch {
      throw new Error(`ESPRUINO_BOARD_BINS: ${b} is not an executable file`);
    }
  }
  return main ? [...list, main] : list;
}

/** The build closest to the board: its JsVar size and a fixed table that holds the board's; else ESPRUINO_BIN. */
export async function interpreterFor(board: BoardProfile, scratch: string): Promise<InterpreterInfo & { bin: string }> {
  const bins = candidates();
  if (bins.length === 0) throw new Error(espruinoUnavailableReason());
  const want = boardJsVarBytes(board.memory.jsVars ?? 0);
  const infos = [];
  for (const bin of bins) infos.push({ ...(await interpreterInfo(bin, scratch)), bin });
  return infos.find((i) => i.fixed && i.blocksize === want && i.total >= (board.memory.jsVars ?? 0)) ?? infos[infos.length - 1];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Measures one Espruino board's bundle: `files` are its Storage files (name -> contents). */
export async function measureEspruinoBoard(board: BoardProfile, files: Record<string, string>, opts: MeasureOptions = {}): Promise<BoardFigures> {
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.runTimeoutMs ?? 600_000;
  const keys = sessionKeys(board);
  const prep = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-flash-"));
  try {
    const interpreter = await interpreterFor(board, prep);
    const bin = interpreter.bin;
    await writeStorage(bin, prep, { ...files, "sesame.cfg": keys.deviceConf });
    const flash = path.join(prep, "espruino.flash");
    let runs = 1;
    log(`${board.name}: timing run on ${bin} (${interpreter.blocksize}-byte JsVars, ${interpreter.fixed ? "fixed table of " + interpreter.total : "resizable table"})`);
    const first = await sessionRun(bin, flash, board, keys, { grow: false, filler: 0 }, true, timeoutMs);
    let peak: number | undefined;
    let resolution = 0;
    if (opts.peak ?? true) {
      const step = opts.resolution ?? 4;
      const trials = opts.trials ?? 3;
      // Runs without a filler must fit in the table as it starts; a resizable one is grown first if not.
      let grow = false;
      // Near the limit, whether a native call finds a contiguous buffer depends on when the interpreter's
      // idle loop collected garbage (as on a board, where events come when they come): a room counts as
      // enough only if the whole session passes in it TRIALS times. A run that failed without a sign of
      // running out of memory (the interpreter died, the session stalled) is run again, twice at most.
      const once = async (filler: number) => {
        for (let attempt = 0; ; attempt++) {
          runs++;
          const r = await sessionRun(bin, flash, board, keys, { grow, filler }, false, timeoutMs);
          if (r.failure === undefined || MEMORY_FAILURE.test(r.failure) || attempt >= 2) return r;
          log(`${board.name}: filler ${filler}: failed, not for memory (${r.failure.slice(0, 120)}): run again`);
        }
      };
      const probe = async (filler: number) => {
        let r = await once(filler);
        let fits = r.failure === undefined && r.totalAfter === r.totalBefore;
        for (let t = 1; fits && t < trials; t++) {
          r = await once(filler);
          fits = r.failure === undefined && r.totalAfter === r.totalBefore;
        }
        log(`${board.name}: filler ${filler} (${r.fillerVars} JsVars): ${fits ? `fits (${trials} runs)` : r.failure ? "failed" : "grew"} (total ${r.totalBefore} -> ${r.totalAfter})${r.failure ? "; " + r.failure : ""}`);
        return { fits, r };
      };
      let zero = await probe(0);
      if (!zero.fits) {
        if (interpreter.fixed) throw new Error(`${board.name}: the session does not fit a table of ${interpreter.total} JsVars: ${zero.r.failure}`);
        if (zero.r.failure !== undefined && zero.r.totalAfter === zero.r.totalBefore) throw new Error(`${board.name}: the session failed: ${zero.r.failure}`);
        grow = true;
        zero = await probe(0);
        if (!zero.fits) throw new Error(`${board.name}: the session does not fit ${zero.r.totalBefore} JsVars${zero.r.failure ? ": " + zero.r.failure : ""}`);
      }
      // room at boot = total - base - loaded - filler; search the largest filler that still fits.
      let lo = 0; // fits
      let loR = zero.r;
      let hi = zero.r.totalBefore - zero.r.base - zero.r.loaded; // surely does not fit
      while (hi - lo > step) {
        const mid = (lo + hi) >> 1;
        const p = await probe(mid);
        if (p.fits) {
          lo = mid;
          loR = p.r;
        } else hi = mid;
      }
      // The session fitted in total - base - fillerVars: everything above the driven interpreter.
      peak = loR.totalBefore - loR.base - loR.fillerVars;
      resolution = hi - lo;
    }
    return {
      board: board.name, bundleBytes: Object.values(files).reduce((n, f) => n + Buffer.byteLength(f, "latin1"), 0), interpreter,
      boardJsVarBytes: boardJsVarBytes(board.memory.jsVars ?? 0), loaded: first.loaded, peak, peakResolution: resolution, idle: first.idle,
      budget: board.memory.jsVars ?? 0, empty: interpreter.empty, handshakeMs: first.hsMs, handshakeWallMs: first.hsWallMs,
      recordMs: median(first.recordMs), runs, samples: first.samples,
    };
  } finally {
    fs.rmSync(prep, { recursive: true, force: true });
  }
}
