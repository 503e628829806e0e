// The command line of `npm run flash`. A bad argument is a UsageError: scripts/flash.ts prints its message
// (what is wrong and how to fix it) and exits with code 2, without a stack trace.

export const FLASH_USAGE = `usage: npm run flash -- --board <name> (--port <addr> | --dry-run <out.js>) (--config <file> | --no-config)

  --board <name>      a board profile, boards/<name>.json
  --port <addr>       upload to this board and save to flash: a BLE address (aa:bb:cc:dd:ee:ff),
                      a serial port (/dev/ttyACM0, COM3) or tcp://host; \`npx espruino --list\` lists them
  --dry-run <out.js>  connect to nothing; write exactly what would be sent to <out.js>
  --config <file>     the board's provisioned configuration, stored as sesame.cfg
                      (mode=psk;order=I;id=<hex>;psk=<hex>;period=60)
  --no-config         flash without sesame.cfg (the board keeps one it already has, or does nothing)
  --build-dir <dir>   where to build (default dist/)
  --no-build          upload the bundle already in the build directory instead of building
  -h, --help          this text`;

export class UsageError extends Error {}

export type FlashArgs = {
  help: boolean;
  board?: string;
  port?: string;
  dryRun?: string;
  config?: string;
  noConfig: boolean;
  buildDir?: string;
  noBuild: boolean;
};

const VALUE_OPTIONS: Record<string, keyof FlashArgs> = {
  "--board": "board",
  "--port": "port",
  "--dry-run": "dryRun",
  "--config": "config",
  "--build-dir": "buildDir",
};

const EXAMPLES: Record<string, string> = {
  "--board": "--board puckjs",
  "--port": "--port aa:bb:cc:dd:ee:ff",
  "--dry-run": "--dry-run upload.js",
  "--config": "--config puck1.cfg",
  "--build-dir": "--build-dir /tmp/sesame-dist",
};

/** Parses `--name value`, `--name=value` and the flags; says what is wrong with anything else. */
export function parseFlashArgs(argv: string[]): FlashArgs {
  const args: FlashArgs = { help: false, noConfig: false, noBuild: false };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (name === "-h" || name === "--help") {
      args.help = true;
      continue;
    }
    if (seen.has(name)) throw new UsageError(`${name} is given twice: give it once`);
    seen.add(name);
    if (name === "--no-config") args.noConfig = true;
    else if (name === "--no-build") args.noBuild = true;
    else if (name in VALUE_OPTIONS) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === "" || (eq < 0 && value.startsWith("-")))
        throw new UsageError(`${name} needs a value, e.g. ${EXAMPLES[name]}`);
      (args as Record<string, unknown>)[VALUE_OPTIONS[name]] = value;
    } else if (arg.startsWith("-")) throw new UsageError(`unknown option ${JSON.stringify(arg)}`);
    else throw new UsageError(`unexpected argument ${JSON.stringify(arg)}: options take the form --board <name>`);
  }
  if (args.config !== undefined && args.noConfig) throw new UsageError("--config and --no-config contradict each other: give one");
  if (args.port !== undefined && args.dryRun !== undefined)
    throw new UsageError("--port and --dry-run contradict each other: --dry-run connects to nothing; give one");
  return args;
}
