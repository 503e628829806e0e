// `sesame <command>`: one CLI for the host side. Every command has --help; options come from flags,
// SESAME_* environment variables and a JSON config file (host/cli/options.ts).
import { pathToFileURL } from "node:url";
import { levelFromEnv, Logger } from "../telemetry/log";
import { CONTROLLER, runController } from "./controller";
import { GATEWAY, runGateway } from "./gateway";
import { CommandSpec, parseOptions, usage, UsageError } from "./options";
import { PROVISION, runProvision, runToken, TOKEN } from "./provision";
import { runStart, START } from "./start";

const COMMANDS: CommandSpec[] = [START, CONTROLLER, GATEWAY, PROVISION, TOKEN];

const HELP = `usage: sesame <command> [options]      (npm run sesame -- <command> ...)

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(12)}${c.summary}`).join("\n")}

  sesame <command> --help   shows a command's options.
Also: npm run sim (a simulated fleet in virtual time), npm run flash (upload a board's bundle).`;

/** Runs until a signal for the long-running commands; returns the exit status for the others. */
export async function main(argv: string[]): Promise<number | "running"> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(HELP + "\n");
    return name ? 0 : 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`sesame: unknown command "${name}"\n\n${HELP}\n`);
    return 2;
  }
  const v = parseOptions(cmd, rest);
  if (v.help) {
    process.stdout.write(usage(cmd) + "\n");
    return 0;
  }
  const lv = levelFromEnv();
  const log = Logger.create({ component: name, level: lv.level });
  if (lv.problem) log.warn(lv.problem);
  if (name === "provision") return runProvision(v).then(() => 0);
  if (name === "token") return (runToken(v), 0);
  if (name === "start") return runStart(v, log);
  const closers: (() => Promise<unknown>)[] = [];
  let started: Promise<unknown> = Promise.resolve();
  // Listening for the signals before anything starts: a SIGTERM sent as soon as the ready line appears (or
  // earlier) waits for the start to finish, then stops everything, rather than killing the process outright.
  const stop = async () => {
    await started.catch(() => {});
    log.info("stopping");
    for (const c of closers) await c().catch(() => {});
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  // Started by a supervisor (`sesame start`, host/cli/spawn.ts): its channel closes when it dies, whatever
  // killed it, and this process must not outlive it.
  if (process.channel !== undefined) {
    process.channel.unref();
    process.once("disconnect", () => void stop());
  }
  if (name === "controller") {
    started = runController(v, log).then((c) => closers.push(() => c.stop()));
  } else if (name === "gateway") {
    started = runGateway(v, log).then((g) => closers.push(() => g.gateway.close(), async () => g.sim?.close(), async () => g.metrics?.close()));
  }
  await started;
  return "running";
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (r) => {
      if (r !== "running") process.exit(r);
    },
    (e: unknown) => {
      if (e instanceof UsageError) {
        process.stderr.write(`sesame: ${e.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`sesame: ${(e as Error).message ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
