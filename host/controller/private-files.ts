// Files only their owner may read: the embedded database, master keys, the processes' key files, device
// configurations. Modes are set explicitly (0700 directories, 0600 files) rather than left to the umask, and
// state that is already too open (written by an older sesame, or by PGlite, which unpacks its initial data
// directory 0666) is tightened rather than refused: the files are sesame's own, refusing would only make
// every operator run the same chmod, and the caller logs what it tightened so the exposure is not silent.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;
/** Bits that let anyone but the owner in. */
const OPEN_BITS = 0o077;

/** Makes `dir` (and any missing parent, 0700 each) and tightens `dir` itself; true if it had to be tightened. */
export function privateDir(dir: string): boolean {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  return tighten(dir);
}

/** Removes group and other permissions from one file or directory; true if it had any. Symlinks are left alone. */
export function tighten(p: string): boolean {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink() || (st.mode & OPEN_BITS) === 0) return false;
  fs.chmodSync(p, st.mode & 0o777 & ~OPEN_BITS);
  return true;
}

/** tighten() over `dir` and everything under it; the number of entries it changed. */
export function tightenTree(dir: string): number {
  let n = tighten(dir) ? 1 : 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += tightenTree(p);
    else n += tighten(p) ? 1 : 0;
  }
  return n;
}

/** Makes a rename or unlink in `dir` durable. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `data` to `file` (mode 0600) so that a crash leaves either no file or the whole one: a temporary
 * file in the same directory, written and fsynced, then moved into place and the directory fsynced.
 * `overwrite: false` refuses an existing file (EEXIST) without a window in which two writers both succeed.
 */
export function writePrivateFile(file: string, data: string | Uint8Array, opts: { overwrite: boolean }): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = fs.openSync(tmp, "wx", PRIVATE_FILE);
  try {
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (opts.overwrite) fs.renameSync(tmp, file);
    else fs.linkSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncDir(dir);
}

/** Whether `name` is a temporary file writePrivateFile left behind (a crash between its write and its move). */
export function isLeftoverTemp(name: string): boolean {
  return /^\..+\.[0-9a-f]{12}\.tmp$/.test(name);
}
