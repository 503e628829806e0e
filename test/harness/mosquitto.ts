// A real Mosquitto broker for tests: its own config in a temp directory, a free port on 127.0.0.1, no
// persistence, killed by the test. .ci/run installs mosquitto from Debian; a machine without it gets an error
// that says so rather than a silently skipped test.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findMosquitto } from "../../host/cli/local-servers";

export { findMosquitto };

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ port, host: "127.0.0.1" });
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** Mosquitto's configuration for a broker on `port`; `dir` is the broker's own temp directory. */
export type MosquittoConfig = (port: number, dir: string) => string;

const ANONYMOUS: MosquittoConfig = (port) => `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`;

export class Mosquitto {
  private proc: ChildProcess | undefined;
  private stderr = "";
  readonly dir = mkdtempSync(join(tmpdir(), "sesame-mosquitto-"));

  private constructor(readonly bin: string, readonly port: number, config: MosquittoConfig) {
    // As root, mosquitto would switch to a "mosquitto" user that may not exist; stay root in the test.
    const user = process.getuid?.() === 0 ? "user root\n" : "";
    writeFileSync(join(this.dir, "mosquitto.conf"), `${user}log_dest stderr\nlog_type error\nlog_type warning\n${config(port, this.dir)}`);
  }

  /**
   * Starts mosquitto on a free port (or `port`, to come back where a stopped one was): by default one that
   * lets anyone in; `config` writes another (files it names go in the broker's `dir`, given to it).
   */
  static async start(port?: number, config: MosquittoConfig = ANONYMOUS): Promise<Mosquitto> {
    const m = new Mosquitto(findMosquitto(), port ?? (await freePort()), config);
    await m.start();
    return m;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  /** (Re)starts the process on the same port; resolves when the port accepts connections. */
  async start(): Promise<void> {
    if (this.proc !== undefined) return;
    this.stderr = "";
    const proc = spawn(this.bin, ["-c", join(this.dir, "mosquitto.conf")], { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    proc.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString()));
    let exited: string | undefined;
    proc.once("exit", (code, signal) => {
      exited = `mosquitto exited (code ${code}, signal ${signal}): ${this.stderr.trim()}`;
      if (this.proc === proc) this.proc = undefined;
    });
    proc.once("error", (err) => (exited = `mosquitto did not start: ${err.message}`));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited !== undefined) throw new Error(exited);
      if (await accepts(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.stop();
    throw new Error(`mosquitto did not accept connections on port ${this.port} within 10 s: ${this.stderr.trim()}`);
  }

  /** Kills the process (SIGKILL: a crash, not a goodbye) and waits for it to be gone. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined) return;
    this.proc = undefined;
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGKILL");
      await gone;
    }
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the broker: connections stay open, nothing is answered meanwhile. */
  pause(paused: boolean): void {
    this.proc?.kill(paused ? "SIGSTOP" : "SIGCONT");
  }

  /** Stops the process and removes its temp directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
