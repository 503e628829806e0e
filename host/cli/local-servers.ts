// Postgres and Mosquitto from this machine, for `sesame start --cluster` (and the tests' throwaway servers):
// where their binaries are (Debian's packages, or $SESAME_PG_BIN), what to install when they are missing, and
// a launcher for host/cli/supervise.ts that starts one, says when it is ready, and makes it die with its
// parent (setpriv --pdeathsig), so a killed `sesame start` leaves no server behind.
// Postgres refuses to run as root: under root it runs as the `postgres` system user.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Launch } from "./supervise";

export function findPostgresBin(): string {
  const fromEnv = process.env.SESAME_PG_BIN;
  if (fromEnv && existsSync(join(fromEnv, "postgres"))) return fromEnv;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "postgres")) && existsSync(join(root, v, "bin", "initdb"))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) {
    throw new Error(
      "no Postgres server binaries found (looked in /usr/lib/postgresql/*/bin and $SESAME_PG_BIN): " +
        "install them with `apt-get install postgresql` (.ci/run does this in CI)",
    );
  }
  return join(root, versions[0], "bin");
}

const MOSQUITTO = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/bin/mosquitto", "/opt/homebrew/sbin/mosquitto"];

export function findMosquitto(): string {
  const found = MOSQUITTO.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`mosquitto not found (looked in ${MOSQUITTO.join(", ")}); install it: apt-get install mosquitto (or run .ci/run, which does)`);
  return found;
}

/** The uid/gid Postgres runs as: ours, or the postgres user's when we are root. */
export function postgresUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    return { uid, gid };
  } catch {
    throw new Error("running as root, and Postgres refuses root: create a `postgres` system user (the postgresql package does)");
  }
}

/** A C-locale environment for Postgres's tools (the machine's locale may not exist in its packages). */
export const POSTGRES_ENV = { ...process.env, LC_ALL: "C", LANG: "C" };

/** initdb into `data` (trust for local connections only: the socket's directory is the lock). */
export function initPostgres(bin: string, data: string, cwd: string, user = postgresUser()): void {
  try {
    execFileSync(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], { ...user, env: POSTGRES_ENV, stdio: "pipe", cwd });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`initdb failed: ${err.stderr?.toString() || err.message}`);
  }
}

const SETPRIV = "/usr/bin/setpriv";

/**
 * A Launch for a server binary: started (under setpriv --pdeathsig KILL where the machine has it, so it
 * dies with this process), ready once `ready()` says so (polled every 100 ms), failed if it exits first.
 */
export function serverLauncher(bin: string, o: { user?: { uid?: number; gid?: number }; env?: NodeJS.ProcessEnv; cwd?: string; ready: () => Promise<boolean> }): Launch {
  return (args, name) => {
    const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ["--pdeathsig", "KILL", bin, ...args]] : [bin, args];
    const proc = spawn(cmd, argv, { ...o.user, env: o.env ?? process.env, cwd: o.cwd, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => void (err = (err + d.toString()).slice(-4000)));
    const ready = new Promise<Record<string, string | number>>((resolve, reject) => {
      let exited = false;
      proc.once("exit", (code, signal) => {
        exited = true;
        reject(new Error(`${name} exited (${signal ?? code}) before it was ready: ${err.trim().split("\n").slice(-3).join(" / ")}`));
      });
      proc.once("error", (e) => reject(new Error(`${name} did not start: ${e.message}`)));
      const poll = async () => {
        if (exited) return;
        if (await o.ready().catch(() => false)) resolve({ ready: name });
        else setTimeout(() => void poll(), 100);
      };
      void poll();
    });
    ready.catch(() => {});
    return { proc, ready };
  };
}
