// Time per operation of the portable primitives, in Node and (where ESPRUINO_BIN names a build of the
// Espruino interpreter) in Espruino itself, running the built probe bundle.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { aesBlock, ccmSeal } from "../../firmware/crypto/ccm";
import { sha256 } from "../../firmware/crypto/sha256";
import { x25519 } from "../../firmware/crypto/x25519";
import { probe } from "../../firmware/probe";
import { fmt, table, timeEach } from "../lib/measure";

const HEX64 = "00".repeat(64);
const K = "000102030405060708090a0b0c0d0e0f";
const N = "a0a1a2a3a4a5a6a7a8a9aaabac";

/** Runs probe calls in the real interpreter and returns ms per call as Espruino's own clock measures it. */
function espruinoTimes(bin: string, bundle: string): Record<string, number> | string {
  const dir = mkdtempSync(join(tmpdir(), "sesame-bench-"));
  const file = join(dir, "bench.js");
  // getTime() is seconds as a float. Each op runs `n` times; the first call's table set-up is excluded.
  const ops: [string, string, string[], number][] = [
    ["ccm.seal 64 B", "ccm.seal", [K, N, "", HEX64, "8"], 5],
    ["sha256 64 B", "sha256", [HEX64], 5],
    ["x25519", "x25519", ["77".repeat(32), "09" + "00".repeat(31)], 1],
    // Complete handshakes, both sides in the interpreter (dh: 8 X25519 of the handshake itself plus the 4
    // public keys the probe derives from its fixed secrets).
    ["handshake psk (both sides)", "psk.R", ["55".repeat(32), "a1a2a3a4a5a6a7a8", "b1b2b3b4b5b6b7b8", "65793.131586.01020304"], 1],
    ["handshake dh (both sides)", "dh.R", ["11".repeat(32), "22".repeat(32), "33".repeat(32), "44".repeat(32), "65793.131586.d15ea5e1"], 1],
  ];
  const lines = ops.map(([label, op, args, n]) => {
    const a = [...args, "", "", "", "", ""].slice(0, 5).map((s) => JSON.stringify(s)).join(",");
    return `sesame.probe(${JSON.stringify(op)},${a});var t=getTime();for(var i=0;i<${n};i++)sesame.probe(${JSON.stringify(op)},${a});` +
      `print("BENCH|${label}|"+((getTime()-t)*1000/${n}));`;
  });
  writeFileSync(file, bundle + "\n" + lines.join("\n") + "\n");
  let out: string;
  try {
    out = execFileSync(bin, [file], { input: "", timeout: 600_000, encoding: "utf8", maxBuffer: 1 << 24 });
  } catch (e) {
    const err = e as { stdout?: string };
    out = err.stdout ?? "";
  }
  const res: Record<string, number> = {};
  for (const m of out.matchAll(/BENCH\|([^|]+)\|([\d.]+)/g)) res[m[1]] = Number(m[2]);
  return Object.keys(res).length ? res : "no results (interpreter output: " + out.slice(-200).replace(/\s+/g, " ") + ")";
}

export function benchPortable(): string {
  const key = randomBytes(16);
  const enc = aesBlock(key);
  const nonce = randomBytes(13);
  const pt = randomBytes(64);
  const rows: (string | number)[][] = [
    ["ccm.seal 64 B", timeEach(() => ccmSeal(enc, nonce, new Uint8Array(0), pt, 8), 2000).toFixed(4)],
    ["sha256 64 B", timeEach(() => sha256(pt), 2000).toFixed(4)],
    ["x25519", timeEach(() => x25519(randomBytes(32), randomBytes(32)), 40).toFixed(3)],
    ["handshake psk (both sides)", timeEach(() => probe("psk.R", "55".repeat(32), "a1a2a3a4a5a6a7a8", "b1b2b3b4b5b6b7b8", "65793.131586.01020304", ""), 200).toFixed(3)],
    ["handshake dh (both sides)", timeEach(() => probe("dh.R", "11".repeat(32), "22".repeat(32), "33".repeat(32), "44".repeat(32), "65793.131586.d15ea5e1"), 10).toFixed(3)],
  ];
  const bin = process.env.ESPRUINO_BIN;
  const bundlePath = "dist/espruino/probe.js";
  let note = "Espruino: set ESPRUINO_BIN to a build of the Espruino interpreter to time the bundle in it.";
  if (bin && existsSync(bin) && existsSync(bundlePath)) {
    const r = espruinoTimes(bin, readFileSync(bundlePath, "utf8"));
    if (typeof r === "string") note = "Espruino: " + r;
    else {
      note = `Espruino: ${bin} running ${bundlePath} (x86 host build; a 64 MHz nRF52 is slower still).`;
      for (const row of rows) {
        const ms = r[row[0] as string];
        row.push(ms === undefined ? "-" : ms.toFixed(1), ms === undefined ? "-" : fmt(ms / Number(row[1])) + "x");
      }
    }
  }
  const head = ["portable op", "Node ms/op"];
  if (rows[0].length > 2) head.push("Espruino ms/op", "Espruino/Node");
  return table(head, rows) + "\n" + note;
}
