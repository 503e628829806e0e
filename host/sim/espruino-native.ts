// Runs probe calls on a real Espruino interpreter (the Linux build), when env ESPRUINO_BIN names one.
// One interpreter run per batch: the bundle and a generated script go into a temp file (Espruino's console
// input is line-buffered and size-limited, a file is not), each result is printed on its own line behind a
// unique prefix, and everything else the interpreter prints (banner, prompt, warnings) is ignored.
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export type ProbeCall = [op: string, args: string[]];

/** The interpreter named by ESPRUINO_BIN, if it is an executable file. */
export function espruinoBinary(): string | undefined {
  const bin = process.env.ESPRUINO_BIN;
  if (!bin) return undefined;
  try {
    fs.accessSync(bin, fs.constants.X_OK);
    return bin;
  } catch {
    return undefined;
  }
}

export function espruinoUnavailableReason(): string {
  return process.env.ESPRUINO_BIN
    ? `ESPRUINO_BIN=${process.env.ESPRUINO_BIN} is not an executable file`
    : "ESPRUINO_BIN is not set (point it at an Espruino Linux build to run on the real interpreter)";
}

export type NativeResult = { ok: true; value: string } | { ok: false; error: string };

/**
 * Runs every call on one interpreter and returns the results in order, after `prelude` (a line of setup). A call that throws, or that the
 * run never reached (a crash, a timeout), gives { ok: false }.
 */
export async function runEspruinoNativeDetailed(bundleCode: string, calls: ProbeCall[], opts: { globalName?: string; timeoutMs?: number; prelude?: string } = {}): Promise<NativeResult[]> {
  const bin = espruinoBinary();
  if (!bin) throw new Error(espruinoUnavailableReason());
  const globalName = opts.globalName ?? "sesame";
  const prefix = "@@" + crypto.randomBytes(6).toString("hex") + "@@";
  const lines = [bundleCode, opts.prelude ?? "", `function __sesameRun(i, op, a, b, c, d, e) {`,
    `  try { print(${JSON.stringify(prefix)} + i + "=" + JSON.stringify(${globalName}.probe(op, a, b, c, d, e))); }`,
    `  catch (x) { print(${JSON.stringify(prefix)} + i + "!" + JSON.stringify(String(x))); }`, `}`];
  calls.forEach(([op, args], i) => {
    const padded = [...args, "", "", "", "", ""].slice(0, 5);
    lines.push(`__sesameRun(${i}, ${[op, ...padded].map((s) => JSON.stringify(s)).join(", ")});`);
  });
  lines.push(`print(${JSON.stringify(prefix)} + "END");`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-espruino-"));
  const script = path.join(dir, "run.js");
  fs.writeFileSync(script, lines.join("\n") + "\n");
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      // stdin is closed at once, so the REPL that follows the script exits.
      const child = spawn(bin, [script], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
      child.stderr.on("data", (d: Buffer) => (out += d.toString("latin1")));
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 1_800_000);
      child.on("error", reject);
      child.on("close", () => {
        clearTimeout(timer);
        resolve(out);
      });
    });
    const results: NativeResult[] = calls.map(() => ({ ok: false, error: "no result (interpreter stopped early?)" }));
    for (const line of stdout.split(/\r?\n/)) {
      const at = line.indexOf(prefix);
      if (at < 0) continue;
      const m = /^(\d+)([=!])(.*)$/.exec(line.slice(at + prefix.length));
      if (!m) continue;
      const value = JSON.parse(m[3]) as string;
      results[Number(m[1])] = m[2] === "=" ? { ok: true, value } : { ok: false, error: value };
    }
    if (!stdout.includes(prefix + "END")) {
      const tail = stdout.split(/\r?\n/).filter((l) => l.trim() && !l.includes(prefix)).slice(-8).join("\n");
      for (const r of results) if (!r.ok && r.error.startsWith("no result")) r.error += "\n" + tail;
    }
    return results;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The brief's shape: the result strings, with a thrown or missing result as "ERROR: <message>". */
export async function runEspruinoNative(bundleCode: string, calls: ProbeCall[]): Promise<string[]> {
  return (await runEspruinoNativeDetailed(bundleCode, calls)).map((r) => (r.ok ? r.value : "ERROR: " + r.error));
}
