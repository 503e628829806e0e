// `npm run flash -- --board puckjs --port <addr> --config <file>`: builds the board's bundle and uploads it
// with the espruino CLI into the board's flash (Storage), with its configuration and the boot code that
// runs it at start-up (scripts/lib/flash-espruino.ts). `--dry-run out.js` connects to nothing and writes
// exactly what would be sent, which test/scripts/flash.test.ts checks.
//
// Exit codes: 0 done, 1 the build or the espruino CLI failed (its output is shown), 2 a bad argument.
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { BoardProfile } from "../firmware/board";
import { buildAll, BuildError, loadBoards, REPO_ROOT } from "./build";
import { FLASH_USAGE, parseFlashArgs, UsageError } from "./lib/flash-args";
import { readFlashConfig } from "./lib/flash-config";
import { BOOT_CODE, BUNDLE_FILE, offlineBoardJson, uploadWithEspruinoCli } from "./lib/flash-espruino";
import { ESPRUINO_MODULES, moduleFile } from "./lib/espruino-modules";
import { storageName } from "./lib/espruino-split";

export type FlashIo = { out: (line: string) => void; err: (line: string) => void };

const CONSOLE_IO: FlashIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** How a Lua board is loaded, since the espruino CLI cannot: the bundle is a chunk returning the exports. */
export function luaInstructions(board: BoardProfile): string {
  const lua = `${board.name}.lua`;
  return [
    `${board.name} runs NodeMCU Lua: the espruino CLI cannot load it. Load it by hand:`,
    `  1. npm run build                (writes dist/lua/${lua})`,
    `  2. upload dist/lua/${lua} and the board's sesame.cfg to its file system, with nodemcu-tool:`,
    `       npx nodemcu-tool --port /dev/ttyUSB0 upload dist/lua/${lua} sesame.cfg`,
    `     or with ESPlorer ("Upload ..."); sesame.cfg is provisioning's one-line key=value;... string`,
    `  3. upload an init.lua (NodeMCU runs it at boot) with these lines:`,
    `       sesame = dofile("${lua}")`,
    `       local r = sesame.boot{crypto=crypto,sodium=sodium,lora=lora}`,
    `       if r ~= "" then print(r) end`,
    `     where lora is the board's SX127x driver ({ listen = function(cb) ... end, send = function(frame) ... end });`,
    `     without one (lora = nil) the board starts with no radio.`,
  ].join("\n");
}

function boardList(boards: BoardProfile[]): string {
  return boards.map((b) => `  ${b.name.padEnd(20)} ${b.title}${b.target === "lua" ? " - loaded by hand, not with this command" : ""}`).join("\n");
}

/** A path as the user would type it: relative to where they are if it is below, else absolute. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith("..") || path.isAbsolute(rel) ? file : rel;
}

/** Prints what is wrong and how to fix it; the whole usage when an argument is missing, else where to find it. */
function usageError(message: string, io: FlashIo, fullUsage = false): number {
  io.err(`flash: ${message}`);
  io.err("");
  io.err(fullUsage ? FLASH_USAGE : FLASH_USAGE.split("\n")[0] + "\n(all options: npm run flash -- --help)");
  return 2;
}

/** The whole command; returns the exit code. */
export async function flash(argv: string[], io: FlashIo = CONSOLE_IO, root = REPO_ROOT): Promise<number> {
  let args;
  try {
    args = parseFlashArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) return usageError(e.message, io);
    throw e;
  }
  const boards = loadBoards(root);
  if (args.help) {
    io.out(FLASH_USAGE + "\n\nboards:\n" + boardList(boards));
    return 0;
  }
  if (args.board === undefined) return usageError(`say which board: --board <name>, one of:\n${boardList(boards)}`, io, true);
  const board = boards.find((b) => b.name === args.board);
  if (board === undefined) return usageError(`unknown board ${JSON.stringify(args.board)}: the boards are (boards/*.json):\n${boardList(boards)}`, io);
  if (board.target === "lua") {
    io.err(`flash: ${luaInstructions(board)}`);
    return 2;
  }
  if (board.espruinoBoard === undefined) return usageError(`boards/${board.name}.json has no "espruinoBoard": add the espruino CLI's board id (e.g. "PUCKJS")`, io);
  if (args.port === undefined && args.dryRun === undefined)
    return usageError("say where to flash: --port <addr> to upload to a board, or --dry-run <out.js> to write what would be sent and connect to nothing", io, true);
  let config: string | undefined;
  try {
    if (args.config !== undefined) config = readFlashConfig(args.config, board);
    else if (!args.noConfig)
      throw new UsageError(
        "no configuration: give --config <file> (provisioning's one line, e.g. mode=psk;order=I;id=<hex>;psk=<hex>;period=60), " +
          "or --no-config to flash without one (the board then prints \"sesame: no configuration ...\" at boot and does nothing else)",
      );
  } catch (e) {
    if (e instanceof UsageError) return usageError(e.message, io);
    throw e;
  }
  if (args.dryRun !== undefined && fs.existsSync(args.dryRun) && fs.statSync(args.dryRun).isDirectory())
    return usageError(`--dry-run ${args.dryRun} is a directory: name a file, e.g. --dry-run ${path.join(args.dryRun, "upload.js")}`, io);
  if (args.dryRun !== undefined && !fs.existsSync(path.dirname(path.resolve(args.dryRun))))
    return usageError(`--dry-run ${args.dryRun}: there is no directory ${path.dirname(path.resolve(args.dryRun))}: create it or name a file elsewhere`, io);
  if (args.dryRun !== undefined && !fs.existsSync(offlineBoardJson(root, board.espruinoBoard)))
    return usageError(`no ${path.relative(root, offlineBoardJson(root, board.espruinoBoard))}: a dry run needs it (see boards/espruino/PUCKJS.json)`, io);

  const outDir = path.resolve(args.buildDir ?? path.join(root, "dist"));
  const bundleFile = path.join(outDir, "espruino", board.name + ".js");
  if (args.noBuild) {
    if (!fs.existsSync(bundleFile)) return usageError(`--no-build, but there is no ${bundleFile}: build it first (npm run build) or drop --no-build`, io);
    io.out(`using ${shown(bundleFile)} as built`);
  } else {
    io.out(`building ${board.title} (${board.name}) ...`);
    try {
      await buildAll({ root, outDir, quiet: true });
    } catch (e) {
      io.err(e instanceof BuildError ? e.message : `build failed: ${(e as Error).stack ?? String(e)}`);
      return 1;
    }
  }
  const files = [{ name: BUNDLE_FILE, file: bundleFile }];
  for (const m of ESPRUINO_MODULES) {
    const f = moduleFile(path.dirname(bundleFile), board.name, m.name);
    if (fs.existsSync(f)) files.push({ name: storageName(m.name), file: f });
  }
  for (const f of files) io.out(`${f.name === BUNDLE_FILE ? "bundle" : "module"} ${shown(f.file)}: ${fs.statSync(f.file).size} bytes -> Storage "${f.name}"`);
  io.out(config === undefined ? `no sesame.cfg (--no-config): the board keeps the one it has, if any` : `config ${args.config}: ${config.length} bytes -> Storage "sesame.cfg"`);
  io.out(`boot code -> Storage ".bootcde": ${BOOT_CODE.trim()}`);
  if (board.radios.lora !== undefined)
    io.out(`note: ${board.name} has a LoRa radio; the boot code passes no driver. Give one as sesame.boot({require:require, lora:{listen:function(cb){...}, send:function(frame){...}}})`);

  const dry = args.dryRun !== undefined;
  io.out(dry ? `dry run: writing what the espruino CLI would send to ${args.dryRun} ...` : `uploading to ${args.port} with the espruino CLI ...`);
  const result = await uploadWithEspruinoCli({
    espruinoBoard: board.espruinoBoard,
    files,
    config,
    port: args.port,
    dryRunOut: args.dryRun === undefined ? undefined : path.resolve(args.dryRun),
    root,
    // A real upload takes a while: show the CLI's progress as it comes.
    onLine: dry ? undefined : (l) => io.out(`  espruino| ${l}`),
  });
  if (!result.ok) {
    if (dry) for (const l of result.output.trimEnd().split("\n")) io.err(`  espruino| ${l}`);
    io.err(`flash: ${result.reason}`);
    return 1;
  }
  if (dry) io.out(`wrote ${args.dryRun} (${fs.statSync(args.dryRun!).size} bytes); nothing was sent`);
  else {
    io.out(`done: ${board.title} restarted and runs sesame from flash, at every boot.`);
    io.out(`watch it: npx espruino -p ${args.port}, then sesame.report() at the > prompt`);
    io.out(`  (sesame turns the Bluetooth UART off: over BLE, see README "Flash a real board")`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  flash(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`flash failed: ${(e as Error).stack ?? String(e)}`);
      process.exit(1);
    },
  );
}
