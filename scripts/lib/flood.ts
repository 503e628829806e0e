// A flood of silent TCP connections, as an attacker would open them (for tests and npm run bench): connect, say nothing, hold on until
// the server closes them. Bounded in count and time, and it stops by itself; only loopback targets.
// Linux routes all of 127/8 to lo, so `from` may name other loopback addresses (another host's sources).
import { fork } from "node:child_process";
import * as net from "node:net";
import { fileURLToPath } from "node:url";

export type SilentFlood = {
  /** Connections opened, and those the server has closed so far. */
  readonly opened: number;
  readonly closedByServer: number;
  stop(): void;
};

export function silentFlood(opts: { port: number; from: string[]; perSecond: number; maxMs?: number; maxConnections?: number }): SilentFlood {
  const sockets = new Set<net.Socket>();
  let opened = 0, closedByServer = 0, stopped = false, turn = 0;
  const maxMs = opts.maxMs ?? 60_000, max = opts.maxConnections ?? 100_000;
  const started = Date.now();
  const stop = () => {
    stopped = true;
    clearInterval(timer);
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  const timer = setInterval(() => {
    if (Date.now() - started > maxMs || opened >= max) return stop();
    // Catch up on the rate when the event loop was late, by at most a second's worth.
    const due = Math.min(opts.perSecond, Math.floor(((Date.now() - started) / 1000) * opts.perSecond) - opened);
    for (let i = 0; i < due; i++) {
      const s = net.connect({ port: opts.port, host: "127.0.0.1", localAddress: opts.from[turn++ % opts.from.length] });
      opened++;
      sockets.add(s);
      s.on("error", () => {});
      s.on("data", () => {}); // read what the server sends (its R1, its challenge); answer nothing
      s.on("close", () => {
        if (!stopped) closedByServer++;
        sockets.delete(s);
      });
    }
  }, 10);
  return {
    get opened() { return opened; },
    get closedByServer() { return closedByServer; },
    stop,
  };
}

const CHILD = "--silent-flood-child";

/**
 * The same flood from a child process, as an attacker elsewhere would run it: it does not share this
 * process's event loop. Ends when stopped, when this process goes, or after maxMs.
 */
export function silentFloodProcess(opts: { port: number; from: string[]; perSecond: number; maxMs: number }): { stop(): Promise<void> } {
  const child = fork(fileURLToPath(import.meta.url), [CHILD, JSON.stringify(opts)], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

if (process.argv[2] === CHILD) {
  const f = silentFlood(JSON.parse(process.argv[3]) as Parameters<typeof silentFlood>[0]);
  const end = () => {
    f.stop();
    process.exit(0);
  };
  process.on("SIGTERM", end);
  process.on("disconnect", end);
}
