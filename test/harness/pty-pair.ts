// Two connected pseudo-terminals made by socat: what one end writes, the other reads, through the kernel's
// tty layer in raw mode, as a USB serial adapter would carry it. .ci/run installs socat; without it the
// tests that need a pair skip, saying why.
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function hasSocat(): boolean {
  return spawnSync("socat", ["-V"], { stdio: "ignore" }).status === 0;
}

export class PtyPair {
  private constructor(private readonly proc: ChildProcess, readonly dir: string, readonly a: string, readonly b: string) {}

  static async open(): Promise<PtyPair> {
    const dir = mkdtempSync(join(tmpdir(), "sesame-pty-"));
    const a = join(dir, "a"), b = join(dir, "b");
    const proc = spawn("socat", ["-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    // socat says "starting data transfer loop" once both ends exist.
    for (let i = 0; i < 200 && !(err.includes("starting data transfer loop") && existsSync(a) && existsSync(b)); i++) {
      if (proc.exitCode !== null) throw new Error(`socat exited: ${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!existsSync(a) || !existsSync(b)) throw new Error(`socat made no pty pair in 5 s: ${err}`);
    return new PtyPair(proc, dir, a, b);
  }

  close(): void {
    this.proc.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
