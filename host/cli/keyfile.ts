// Key files for the processes: the controller's backbone key pair and a gateway's identity. JSON with hex
// fields, written once with mode 0600; the secret never goes to a log or the terminal.
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { backboneKeyPair } from "../backbone/handshake";

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
export function ensureKeyFile(file: string): { key: KeyFile; made: boolean } {
  if (fs.existsSync(file)) return { key: readKeyFile(file), made: false };
  const kp = backboneKeyPair();
  const key: KeyFile = { kid: randomBytes(4).toString("hex"), public: Buffer.from(kp.S).toString("hex"), secret: Buffer.from(kp.s).toString("hex") };
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(key, null, 2) + "\n", { mode: 0o600 });
  return { key, made: true };
}

export const bytes = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
