// A `sesame <command>` child process and its ready line (the one JSON object it prints once listening).
// The child gets an IPC channel it never speaks on: when the parent dies, however, the channel closes and
// the child stops (host/cli/main.ts), so a killed `sesame start` leaves no controller or gateway behind.
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "../telemetry/log";
import { allocatorEnv } from "./malloc";

const ROOT = path.resolve(import.meta.dirname, "../..");

export type Ready = Record<string, string | number>;

/**
 * Node flags for every sesame process (package.json's `sesame` script passes the same). Sealing backbone
 * records makes a fresh OpenSSL output buffer per byte sent (node:crypto has no update into a caller's
 * buffer), so V8 scavenges every few tens of MB sent; in a process whose live heap is small it had set its
 * old generation's limit so close (8 MB live, 19 MB limit) that those scavenges started a full marking, 2
 * to 4 per 64 MB sent, on the helper threads, while TLS's sender, which allocates nothing, had none
 * (measured with --trace-gc, `npm run bench -- bulk`). An old generation allowed 64 MB before its first
 * limit had none; a heap beyond that gets V8's usual limits.
 */
export const SESAME_NODE_FLAGS = ["--initial-old-space-size=64"];

/** Starts `sesame <args>`, on the allocator SESAME_MALLOC names (./malloc.ts: glibc's malloc by default). */
export function spawnSesame(args: string[], name: string, log: Logger, env: NodeJS.ProcessEnv = process.env): { proc: ChildProcess; ready: Promise<Ready> } {
  const childEnv = allocatorEnv(env).env;
  const proc = spawn(process.execPath, [...SESAME_NODE_FLAGS, "--import", "tsx", path.join(ROOT, "host/cli/main.ts"), ...args], {
    cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe", "ipc"], env: { ...childEnv, SESAME_LOG_LEVEL: env.SESAME_LOG_LEVEL ?? "warn" },
  });
  // Only a channel to notice the parent's death by: it must not keep this process alive.
  proc.channel?.unref();
  const ready = new Promise<Ready>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      try {
        const m = JSON.parse(line) as Ready;
        if (m.ready) resolve(m);
      } catch {
        /* not the ready line */
      }
    });
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => {
      // The tail is enough to say why a child could not start; a long run must not grow this.
      err = (err + d.toString()).slice(-4000);
      // Only their errors: warnings (a gateway reconnecting, a refused call) would bury the status line.
      for (const l of d.toString().split("\n")) if (l.includes('"level":"error"')) log.error(`${name}: ${l.slice(0, 300)}`);
    });
    proc.on("exit", (code, signal) => reject(new Error(`${name} exited (${signal ?? code}) before it was ready: ${err.trim().split("\n").slice(-3).join(" / ")}`)));
  });
  // A child that dies after it was ready rejects nothing anyone waits on.
  ready.catch(() => {});
  return { proc, ready };
}
