// Driving a real Espruino interpreter (a Linux build) the way a board is driven: Storage written in small
// pieces, then the interactive console fed one short line at a time. Used by host/sim/espruino-memory.ts.
//
// Storage: the Linux build keeps its flash in ./espruino.flash. A script writes each file into Storage in
// 512-byte pieces read from a real file (E.openFile), so the interpreter never holds a whole file in RAM:
// a build with a board-sized JsVar table (2630 to 4000 JsVars) could not hold a 30 KB bundle as a string.
import { spawn, ChildProcessWithoutNullStreams } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** Runs a script file once (no console), in `cwd`; resolves with everything it printed. */
export function runScript(bin: string, cwd: string, script: string, timeoutMs: number): Promise<string> {
  const file = path.join(cwd, "setup.js");
  fs.writeFileSync(file, script);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [file], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
    child.stderr.on("data", (d: Buffer) => (out += d.toString("latin1")));
    // Espruino traps SIGTERM: only SIGKILL stops it.
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", () => {
      clearTimeout(timer);
      fs.rmSync(file, { force: true });
      resolve(out);
    });
  });
}

/** Writes `files` (name -> byte string) into the Storage of the interpreter's flash in `cwd`. */
export async function writeStorage(bin: string, cwd: string, files: Record<string, string>): Promise<void> {
  const q = JSON.stringify;
  const lines = ["var S=require('Storage'),F=require('fs');",
    "function put(n,f){var z=F.statSync(f).size,h=E.openFile(f,'r'),o=0,d;while((d=h.read(512))){S.write(n,d,o,z);o+=d.length;}h.close();F.unlink(f);" +
    "print(S.read(n).length===z?'@stored@'+n:'@short@'+n)}"];
  let i = 0;
  for (const [name, data] of Object.entries(files)) {
    const tmp = `w${i++}.bin`;
    fs.writeFileSync(path.join(cwd, tmp), data, "latin1");
    // An empty file cannot be written in pieces: Storage.write of "" makes it.
    lines.push(data.length === 0 ? `S.write(${q(name)},"");print('@stored@'+${q(name)});` : `put(${q(name)},${q(tmp)});`);
  }
  const out = await runScript(bin, cwd, lines.join("\n") + "\n", 120_000);
  for (const name of Object.keys(files))
    if (!out.includes("@stored@" + name)) throw new Error(`could not write ${name} to Storage:\n` + out.split("\n").slice(-6).join("\n"));
}

/** What an interpreter build is, for saying how close to a board its counts are. */
export type InterpreterInfo = {
  version: string;
  /** Bytes per JsVar (process.memory().blocksize): 27 on the 64-bit Linux build, 13 on an nRF52832 board. */
  blocksize: number;
  /** JsVars in the table when it starts. */
  total: number;
  /** A fixed-size table (a board's; the Linux default doubles its table when full). */
  fixed: boolean;
  /** JsVars in use in the empty interpreter (a board's own share of its table). */
  empty: number;
};

const infoCache = new Map<string, InterpreterInfo>();

export async function interpreterInfo(bin: string, cwd: string): Promise<InterpreterInfo> {
  const hit = infoCache.get(bin);
  if (hit) return hit;
  const out = await runScript(bin, cwd, `var m=process.memory();print("@info@"+process.version+","+m.blocksize+","+m.total+","+m.usage)\n`, 20_000);
  const m = /@info@([^,]+),(\d+),(\d+),(\d+)/.exec(out);
  if (!m) throw new Error(`${bin}: no answer to process.memory():\n${out.split("\n").slice(-4).join("\n")}`);
  // Only the resizable table (RESIZABLE_JSVARS, 32-bit references) has JsVars above 16 bytes.
  const info = { version: m[1], blocksize: Number(m[2]), total: Number(m[3]), fixed: Number(m[2]) <= 16, empty: Number(m[4]) };
  infoCache.set(bin, info);
  return info;
}

/** Time the interpreter is left idle after each line (ms). */
const IDLE_MS = 3;

/** The interactive interpreter: one line in, its marked answers out. */
export class EspruinoConsole {
  private child: ChildProcessWithoutNullStreams;
  private buf = "";
  private tail: string[] = [];
  private waiting: { resolve: (v: string[]) => void; reject: (e: Error) => void; values: string[] } | undefined;
  private closed = false;
  /** Every error the interpreter printed, whether or not a line was waiting for its answer. */
  readonly errors: string[] = [];
  readonly prefix = "@" + crypto.randomBytes(2).toString("hex") + "@";

  constructor(bin: string, cwd: string, private onChunk: (hex: string) => void) {
    this.child = spawn(bin, [], { cwd, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (d: Buffer) => this.data(d.toString("latin1")));
    this.child.stderr.on("data", () => undefined);
    this.child.stdin.on("error", () => undefined);
    this.child.on("close", () => {
      this.closed = true;
      this.waiting?.reject(new Error("the interpreter stopped:\n" + this.tail.join("\n")));
      this.waiting = undefined;
    });
  }

  private data(s: string): void {
    this.buf += s;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, "");
      this.buf = this.buf.slice(nl + 1);
      this.line(line);
    }
  }

  private line(line: string): void {
    const at = line.indexOf(this.prefix);
    if (at < 0) {
      if (line.trim()) this.tail = [...this.tail.slice(-12), line];
      if (/Uncaught|OUT OF MEMORY/.test(line)) this.errors.push(line.trim());
      if (/Uncaught|OUT OF MEMORY/.test(line) && this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        setTimeout(() => w.reject(new Error("Espruino: " + line + "\n" + this.tail.join("\n"))), 50);
      }
      return;
    }
    const body = line.slice(at + this.prefix.length);
    const kind = body[0], rest = body.slice(1);
    if (kind === "N") this.onChunk(rest);
    else if (kind === "V") this.waiting?.values.push(rest);
    else if (kind === "K" && this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      // The interpreter goes idle before the next line, as a board does between events: its idle loop then
      // collects garbage when memory is low, and that reorders the free list. Sent at once, the next line
      // could come before or after that, and runs would differ in what a native call finds free.
      setTimeout(() => w.resolve(w.values), IDLE_MS);
    }
  }

  /** Sends one line (kept short) followed by the acknowledgement; resolves with the V values it printed. */
  run(line: string, timeoutMs = 120_000): Promise<string[]> {
    if (this.closed) return Promise.reject(new Error("the interpreter stopped:\n" + this.tail.join("\n")));
    if (this.waiting) return Promise.reject(new Error("one line at a time"));
    const text = line + ";K()";
    if (text.length > 200) return Promise.reject(new Error(`console line too long (${text.length}): ${line.slice(0, 60)}...`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no answer to ${JSON.stringify(line.slice(0, 80))} in ${timeoutMs} ms\n` + this.tail.join("\n")));
      }, timeoutMs);
      this.waiting = {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
        values: [],
      };
      this.child.stdin.write(text + "\n");
    });
  }

  /** Sends raw lines (a definition spread over lines) without an acknowledgement. */
  raw(lines: string[]): void {
    for (const l of lines) {
      if (l.length > 200) throw new Error("console line too long: " + l.slice(0, 60));
      this.child.stdin.write(l + "\n");
    }
  }

  /** A power cut: the process is killed, its flash file stays. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once("close", () => resolve());
      this.child.kill("SIGKILL");
    });
  }
}
