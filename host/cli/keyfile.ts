// Key files for the processes: the controller's backbone key pair and a gateway's identity. JSON with hex
// fields, written once (atomically, mode 0600, in a directory made 0700 if it has to be made); one found open
// to other users is tightened with a warning. The secret never goes to a log or the terminal.
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { backboneKeyPair } from "../backbone/handshake";
import { PRIVATE_DIR, tighten, writePrivateFile } from "../controller/private-files";
import type { Logger } from "../telemetry/log";

export type KeyFile = { kid: string; public: string; secret: string };

const HEX = /^[0-9a-f]+$/;

export function readKeyFile(file: string): KeyFile {
  let k: KeyFile;
  try {
    k = JSON.parse(fs.readFileSync(file, "utf8")) as KeyFile;
  } catch (e) {
    throw new Error(`key file ${file}: ${(e as Error).message}`);
  }
  if (!HEX.test(k.kid ?? "") || k.kid.length !== 8 || !HEX.test(k.public ?? "") || k.public.length !== 64 || !HEX.test(k.secret ?? "") || k.secret.length !== 64) {
    throw new Error(`key file ${file}: expected {"kid": 8 hex digits, "public": 64, "secret": 64}; delete it to have a new one made`);
  }
  return k;
}

/** Reads the key file, or makes one (returns made: true) when there is none. */
export function ensureKeyFile(file: string, log?: Logger): { key: KeyFile; made: boolean } {
  if (fs.existsSync(file)) {
    if (tighten(file)) log?.warn("key file was open to other users; now owner-only: if others could read it, delete it so a new one is made", { file: path.resolve(file) });
    return { key: readKeyFile(file), made: false };
  }
  const kp = backboneKeyPair();
  const key: KeyFile = { kid: randomBytes(4).toString("hex"), public: Buffer.from(kp.S).toString("hex"), secret: Buffer.from(kp.s).toString("hex") };
  // Only the directories made here are made private: an existing parent (the working directory) is the operator's.
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: PRIVATE_DIR });
  writePrivateFile(file, JSON.stringify(key, null, 2) + "\n", { overwrite: false });
  return { key, made: true };
}

export const bytes = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
