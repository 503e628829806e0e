// The configuration a board is flashed with (Storage file "sesame.cfg"): provisioning's output, a string
// "key=value;..." that firmware/runtime/config.ts reads at boot. It is written as given; it is checked here
// only for what would otherwise make the flashed board fail at boot, where nobody sees the error.
import * as fs from "node:fs";
import type { BoardProfile } from "../../firmware/board";
import { fromHex } from "../../firmware/bytes";
import { parseFields } from "../../firmware/runtime/config";
import { UsageError } from "./flash-args";

/** The hex fields deviceEndpoint() needs per mode (firmware/runtime/config.ts). */
const REQUIRED_HEX: Record<"dh" | "psk", string[]> = { psk: ["id", "psk"], dh: ["kid", "secret", "gateway"] };

/**
 * The file's text, less the line break an editor leaves at the end (it would become part of the last
 * value, and a hex key with "\n" in it does not parse); throws UsageError naming what is wrong.
 */
export function readFlashConfig(file: string, board: BoardProfile): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "latin1");
  } catch (e) {
    throw new UsageError(`--config ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the file provisioning wrote`);
  }
  const conf = text.replace(/(\r?\n)+$/, "");
  const where = `--config ${file}`;
  if (conf === "") throw new UsageError(`${where} is empty: it should hold a line like mode=psk;order=I;id=<hex>;psk=<hex>;period=60`);
  if (/[\r\n]/.test(conf)) throw new UsageError(`${where} has more than one line: sesame.cfg is one line of key=value pairs separated by ";"`);
  const f = parseFields(conf);
  // The firmware reads a missing mode as psk.
  const mode = f["mode"] ?? "psk";
  if (mode !== "psk" && mode !== "dh") throw new UsageError(`${where}: mode=${mode} is not a mode: use mode=psk or mode=dh`);
  if (mode !== board.handshake)
    throw new UsageError(`${where} is a ${mode} configuration, but the ${board.name} bundle does ${board.handshake} only (boards/${board.name}.json "handshake"): provision the board for ${board.handshake}`);
  for (const key of REQUIRED_HEX[mode]) {
    const v = f[key];
    if (v === undefined) throw new UsageError(`${where} has no ${key}=...: a ${mode} configuration needs ${REQUIRED_HEX[mode].join(", ")}`);
    if (v === "" || fromHex(v) === undefined) throw new UsageError(`${where}: ${key} must be hex (an even number of 0-9a-f digits)`);
  }
  return conf;
}
