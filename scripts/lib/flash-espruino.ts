// Uploading a board bundle with the `espruino` CLI (npm package espruino), so that it runs from flash.
//
// What the board ends up with in Storage:
//   sesame.js   the bundle, uploaded as a data file (the CLI writes it in atob() chunks, untouched)
//   sesame.boot, sesame.hs   its modules (scripts/lib/espruino-modules.ts), loaded only while a phase
//               runs, the same way
//   sesame.cfg  the configuration, the same way (unless flashed without one)
//   .bootcde    BOOT_CODE, which Espruino runs at start-up; the CLI's `--storage .bootcde:-` writes the
//               uploaded program there and ends with load(".bootcde"), which restarts the board into it.
// The bundle is eval()'d from its Storage string rather than uploaded as the program: Espruino then keeps
// function code in flash instead of copying it into JsVars, which a Puck.js could not hold.
//
// What the CLI sends depends on two facts about the board: its firmware version (it writes Storage files
// only for 1v96 or later) and its built-in modules (a require()d module not built in is fetched from
// espruino.com and inlined). Connected, the board reports both (process.env). A dry run connects to
// nothing and cannot download http://www.espruino.com/json/<BOARD>.json offline, so it is given
// boards/espruino/<BOARD>.json, which states just those two facts.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { writePrivateFile } from "../../host/controller/private-files";

export const BUNDLE_FILE = "sesame.js";
export const CONFIG_FILE = "sesame.cfg";
export const BOOT_FILE = ".bootcde";
/** Runs the bundle from its Storage string: defines the global `sesame`. */
export const BOOT_LOAD = `eval(require("Storage").read("${BUNDLE_FILE}"));`;
/** Starts the board; boot() returns "" or what is wrong (e.g. no configuration). */
export const BOOT_START = `var r=sesame.boot({require:require});if(r)print(r);`;
export const BOOT_CODE = BOOT_LOAD + BOOT_START + "\n";

export type UploadPlan = {
  /** The espruino CLI board id (a profile's "espruinoBoard"). */
  espruinoBoard: string;
  /** The built bundle's Storage files: sesame.js (dist/espruino/<board>.js) and its modules. */
  files: { name: string; file: string }[];
  /** The configuration to store as sesame.cfg, or undefined to leave Storage's as it is. */
  config: string | undefined;
  /** Upload to this port, or ... */
  port?: string;
  /** ... write what would be sent to this file and connect to nothing. */
  dryRunOut?: string;
  /** Repository root (for boards/espruino/). */
  root: string;
  /** Each line the CLI prints, as it prints it. */
  onLine?: (line: string) => void;
};

export type UploadResult = { ok: boolean; exitCode: number | null; output: string; reason: string };

export function offlineBoardJson(root: string, espruinoBoard: string): string {
  return path.join(root, "boards", "espruino", espruinoBoard + ".json");
}

const CLI = createRequire(import.meta.url).resolve("espruino/bin/espruino-cli.js");

/** Serial and TCP ports: the CLI need not start Bluetooth (which fails outright without a D-Bus). */
function isWiredPort(port: string): boolean {
  return /^(\/dev\/|COM\d+$|tcp:\/\/)/i.test(port);
}

/**
 * The CLI's arguments. Files are named relative to the staging directory it runs in: its --storage
 * splits "name:file" at every ":" and its -o wants a name containing ".js", so no user path goes there.
 */
export function espruinoCliArgs(plan: UploadPlan): string[] {
  const args: string[] = [];
  if (plan.dryRunOut !== undefined) args.push("-n", "--board", offlineBoardJson(plan.root, plan.espruinoBoard));
  else {
    args.push("-p", plan.port!);
    if (isWiredPort(plan.port!)) args.push("--no-ble");
  }
  // Data files first, then the boot code as the program, stored in .bootcde (the CLI writes the data
  // files, then .bootcde, then load(".bootcde")).
  for (const f of plan.files) args.push("--storage", `${f.name}:${f.name}`);
  if (plan.config !== undefined) args.push("--storage", `${CONFIG_FILE}:${CONFIG_FILE}`);
  args.push("--storage", `${BOOT_FILE}:-`);
  if (plan.dryRunOut !== undefined) args.push("-o", "out.js");
  args.push("boot.js");
  return args;
}

/** Stages the files, runs the CLI, and judges its outcome from its output as well as its exit code. */
export async function uploadWithEspruinoCli(plan: UploadPlan): Promise<UploadResult> {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-flash-"));
  try {
    // A copy, so a build running elsewhere in the meantime cannot change what is uploaded.
    for (const f of plan.files) fs.copyFileSync(f.file, path.join(stage, f.name));
    // The configuration holds the device's key: owner-only, like the dry run's output that carries it.
    if (plan.config !== undefined) fs.writeFileSync(path.join(stage, CONFIG_FILE), plan.config, { encoding: "latin1", mode: 0o600 });
    fs.writeFileSync(path.join(stage, "boot.js"), BOOT_CODE);
    const { exitCode, output } = await runCli(espruinoCliArgs(plan), stage, plan.onLine);
    const result = judge(exitCode, output, plan, stage);
    if (result.ok && plan.dryRunOut !== undefined) writePrivateFile(plan.dryRunOut, fs.readFileSync(path.join(stage, "out.js")), { overwrite: true });
    return result;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

function runCli(args: string[], cwd: string, onLine?: (line: string) => void): Promise<{ exitCode: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let partial = "";
    const take = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      output += text;
      if (!onLine) return;
      partial += text;
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const l of lines) onLine(l);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (code) => {
      if (onLine && partial !== "") onLine(partial);
      resolve({ exitCode: code, output });
    });
  });
}

// The CLI exits 0 when it could not connect ("Unable to connect!") and when the board's firmware is too
// old for Storage uploads (it then uploads nothing), so its output is checked too.
function judge(exitCode: number | null, output: string, plan: UploadPlan, stage: string): UploadResult {
  const fail = (reason: string): UploadResult => ({ ok: false, exitCode, output, reason });
  if (/system_bus_socket/.test(output))
    return fail("the espruino CLI found no Bluetooth stack here (BlueZ over D-Bus): start bluetoothd, or flash over a USB serial port");
  if (exitCode !== 0) return fail(`the espruino CLI exited with code ${exitCode}`);
  if (/Unable to connect/.test(output)) return fail(`the espruino CLI could not connect to ${plan.port}`);
  if (/pre-1v96 firmware/.test(output)) return fail("the board's firmware is older than 1v96 and has no Storage: update its firmware");
  const missing = /Module (\S+) not found/.exec(output);
  if (missing) return fail(`the espruino CLI found no module ${missing[1]}: the board does not have it built in`);
  if (plan.dryRunOut !== undefined) {
    const out = path.join(stage, "out.js");
    if (!fs.existsSync(out) || fs.statSync(out).size === 0) return fail("the espruino CLI wrote no output file");
    return { ok: true, exitCode, output, reason: "" };
  }
  if (!/Upload Complete/.test(output)) return fail("the espruino CLI did not report \"Upload Complete\"");
  return { ok: true, exitCode, output, reason: "" };
}
