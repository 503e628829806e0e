// Key files for the processes: the controller's backbone key pair and a gateway's identity (JSON with hex
// fields), and shared secrets (the simulator link's: 64 hex digits). Written once (atomically, 0600, in a
// directory made 0700 if it has to be made); a key file found open to other users is tightened with a
// warning. The secret never goes to a log or the terminal.
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
  writePrivate(file, JSON.stringify(key, null, 2) + "\n");
  return { key, made: true };
}

/** Reads a 32-byte shared secret (64 hex digits), or makes one; refuses a file that others may read. */
export function ensureSecretFile(file: string): { secret: Buffer; made: boolean } {
  if (!fs.existsSync(file)) {
    const secret = randomBytes(32);
    writePrivate(file, secret.toString("hex") + "\n");
    return { secret, made: true };
  }
  if ((fs.statSync(file).mode & 0o077) !== 0) throw new Error(`secret file ${file}: others may read it; chmod 600 ${file} (or delete it to have a new one made)`);
  const text = fs.readFileSync(file, "utf8").trim();
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new Error(`secret file ${file}: expected 64 hex digits; delete it to have a new one made`);
  return { secret: Buffer.from(text, "hex"), made: false };
}

/** A new file, 0600; only the directories made here are made private (an existing parent is the operator's). */
function writePrivate(file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: PRIVATE_DIR });
  writePrivateFile(file, text, { overwrite: false });
}

export const bytes = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
