// `sesame controller` as an operator runs it, in its own process, on ephemeral ports and a state directory of
// the test's: its JSON log lines are collected so a test can act when one appears (kill it at a step of a
// rotation, say) instead of after a sleep.
import type { ChildProcess } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { spawnSesame, type Ready } from "../../host/cli/start";
import { Logger, memorySink } from "../../host/telemetry/log";

export type LogRecord = { level: string; msg: string; fields?: Record<string, unknown> };

export type ControllerProcess = {
  proc: ChildProcess;
  ready: Ready;
  admin: string;
  records: LogRecord[];
  /** The first log record (already seen or to come) that `match` accepts; rejects if the process exits first. */
  waitFor(match: (r: LogRecord) => boolean, what: string): Promise<LogRecord>;
  /** SIGTERM, and its exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, and its exit. */
  kill(): Promise<void>;
};

export type ControllerProcessOptions = {
  /** The state directory: db/, keys/ and controller.key go under it unless `args` say otherwise. */
  dir: string;
  /** id:sha256 for --admin-tokens. */
  tokens: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
};

export async function startControllerProcess(o: ControllerProcessOptions): Promise<ControllerProcess> {
  const args = ["controller", "--data-dir", path.join(o.dir, "db"), "--master-key-dir", path.join(o.dir, "keys"), "--key-file", path.join(o.dir, "controller.key"),
    "--admin-port", "0", "--backbone-port", "0", "--mqtt-port", "0", "--admin-tokens", o.tokens, ...(o.args ?? [])];
  const { proc, ready } = spawnSesame(args, "controller", Logger.create({ level: "silent", stream: memorySink() }), o.env);
  const records: LogRecord[] = [];
  const waiters: { match: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = [];
  createInterface({ input: proc.stderr! }).on("line", (line) => {
    let r: LogRecord;
    try {
      r = JSON.parse(line) as LogRecord;
    } catch {
      r = { level: "text", msg: line };
    }
    records.push(r);
    for (const w of waiters.splice(0)) (w.match(r) ? w.resolve(r) : waiters.push(w));
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const started = await ready;
  return {
    proc, ready: started, admin: `http://127.0.0.1:${started.admin}`, records,
    waitFor: (match, what) => {
      const seen = records.find(match);
      if (seen) return Promise.resolve(seen);
      return Promise.race([
        new Promise<LogRecord>((resolve) => waiters.push({ match, resolve })),
        exited.then(() => Promise.reject(new Error(`the controller exited before ${what}: ${records.slice(-3).map((r) => r.msg).join(" / ")}`))),
      ]);
    },
    stop: () => {
      proc.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      proc.kill("SIGKILL");
      await exited;
    },
  };
}
