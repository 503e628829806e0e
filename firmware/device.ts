// The entry of a board's bundle (dist/espruino/<board>.js, dist/lua/<board>.lua): the board's profile (the
// build supplies it: #target builtProfile), its hardware layer (`#hw`), the device runtime and the
// example sensor application. The build also fixes the features the profile does not use to false
// (firmware/features.d.ts), so the bundle carries one handshake mode, one role and only the portable crypto
// the board lacks.
//
// Flashed, the board runs `sesame.boot({ require: require })` (Espruino) or
// `sesame.boot({ crypto = crypto, sodium = sodium, lora = lora })` (NodeMCU) at start-up. Its configuration
// (provisioning's output: mode, keys, and `period` in seconds) is the storage file "sesame.cfg".
import { boardHal, boardProvider as hwProvider, BootNatives, Natives } from "#hw";
import { CryptoProvider } from "./crypto/provider";
import { sensorStart } from "./app/sensor";
import { BoardProfile } from "./board";
import { parseDecimal } from "./session/seqstore";
import { parseFields } from "./runtime/config";
import { Runtime, rtNew, rtReport, rtSend, rtStart } from "./runtime/runtime";
import { builtProfile, Bytes } from "#target";

/** The board's profile (made when asked for: held in a variable, it would take RAM on Espruino for good). */
export function profile(): BoardProfile {
  return builtProfile() as BoardProfile;
}

export const CONFIG_FILE = "sesame.cfg";
const TICK_MS = 100;

let rt: Runtime | undefined = undefined;

/** Starts the board: hardware layer, runtime, sensor application. Returns "" or what is wrong. */
export function boot(natives: BootNatives): string {
  const hal = boardHal(profile(), natives);
  const conf = hal.storage.read(CONFIG_FILE);
  if (conf === undefined || conf === "") return "sesame: no configuration: write the provisioned config to storage as " + CONFIG_FILE;
  rt = rtNew(hal, conf);
  rtStart(rt, TICK_MS);
  const period = parseDecimal(parseFields(conf)["period"] === undefined ? "60" : parseFields(conf)["period"]);
  sensorStart(rt, period > 0 ? period : 60);
  return "";
}

/** The runtime's counters (firmware/runtime/runtime.ts rtReport), for the REPL and the simulator. */
export function report(): string {
  return rt === undefined ? "" : rtReport(rt);
}

/** The runtime's state object, for inspecting it from the REPL (the simulator sizes it for its memory model). */
export function state(): Runtime | undefined {
  return rt;
}

/** Sends one application message now (besides the sensor's own); its id, or -1. */
export function send(body: Bytes): number {
  return rt === undefined ? -1 : rtSend(rt, body);
}

/** The board's crypto provider alone, for checking it from the REPL (and in the tests). */
export function boardProvider(natives: Natives): CryptoProvider {
  return hwProvider(profile().nativeCrypto, natives);
}

export { fromHex, toHex } from "./bytes";
