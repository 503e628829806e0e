// Key files for the processes: the controller's backbone key pair and a gateway's identity (JSON with hex
// fields), and shared secrets (the simulator link's: 64 hex digits). Written once, 0600 in a directory made
// 0700 whatever the umask; the secret never goes to a log or the terminal.
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

/** Writes a new file 0600; directories it makes are 0700 (modes set explicitly: the umask may say otherwise). */
function writePrivate(file: string, text: string): void {
  const dir = path.dirname(path.resolve(file));
  const first = fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (first !== undefined) for (let d = dir; d.length >= first.length; d = path.dirname(d)) fs.chmodSync(d, 0o700);
  const fd = fs.openSync(file, "wx", 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}

export const bytes = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
