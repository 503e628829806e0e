// The master key directory (e.g. .sesame/keys, mode 0700): where a controller finds its master keys at start
// and where a rotation puts the new one, so that no kill -9 can leave rows wrapped under a key the next start
// does not have, nor a key file the database has never heard of. A new key goes through two names:
//
//   master-<fingerprint>.key.pending   written (atomically, 0600) before the database records the key;
//   master-<fingerprint>.key           the same file renamed once the version is committed, before anything
//                                      is wrapped under it.
//
// At start a .key file is a key (a wrong one is an error: Keyring.open), while a .pending file is only a
// candidate: used, and renamed, if the database knows its fingerprint (the process died between the commit
// and the rename); ignored if not (it died before the commit: nothing was wrapped under it). An ignored one is
// logged and kept, never deleted: the same directory pointed at another database by mistake must not cost
// that database its newest key. Delete it by hand once no database needs it.
import * as fs from "node:fs";
import { join } from "node:path";
import { MasterKey, MasterKeyError, readMasterKeyFile } from "./masterkey";
import { fsyncDir, isLeftoverTemp, privateDir, tighten, writePrivateFile } from "./private-files";

const PENDING = /^(master-[0-9a-f]{32}\.key)\.pending$/;

export type KeyDirContents = {
  /** Every *.key file's key. */
  keys: MasterKey[];
  /** Keys written for a rotation the database may not have recorded. */
  pending: MasterKey[];
  /** Entries whose modes let others in, now tightened (the caller warns: they may have been read). */
  tightened: string[];
};

export class MasterKeyDir {
  constructor(readonly path: string) {}

  keyFile(fingerprint: string): string {
    return join(this.path, `master-${fingerprint}.key`);
  }

  pendingFile(fingerprint: string): string {
    return this.keyFile(fingerprint) + ".pending";
  }

  /** Whether the directory holds any key, recorded or pending (an empty one gets a new key at first start). */
  isEmpty(): boolean {
    return !fs.existsSync(this.path) || !fs.readdirSync(this.path).some((n) => n.endsWith(".key") || PENDING.test(n));
  }

  /** Reads every key file: `*.key` (any name, so an operator's own files count) and the pending ones. */
  load(): KeyDirContents {
    const out: KeyDirContents = { keys: [], pending: [], tightened: [] };
    let names: string[];
    try {
      names = fs.readdirSync(this.path).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
      throw new MasterKeyError(`master key directory ${this.path}: ${(e as Error).message}`);
    }
    if (tighten(this.path)) out.tightened.push(this.path);
    for (const n of names) {
      const file = join(this.path, n);
      // A write that a crash cut short before its rename: never recorded, so nothing needs it.
      if (isLeftoverTemp(n)) fs.rmSync(file, { force: true });
      if (!n.endsWith(".key") && !PENDING.test(n)) continue;
      if (tighten(file)) out.tightened.push(file);
      (PENDING.test(n) ? out.pending : out.keys).push(readMasterKeyFile(file));
    }
    return out;
  }

  /** First phase: the key on disk under its pending name, before the database hears of it. Returns the file. */
  stage(key: MasterKey): string {
    privateDir(this.path);
    const file = this.pendingFile(key.fingerprint);
    key.writeTo(file, { overwrite: true });
    return file;
  }

  /** Second phase, once the database has the key's version: the pending file becomes a key file. */
  promote(fingerprint: string): string {
    const file = this.keyFile(fingerprint);
    if (fs.existsSync(this.pendingFile(fingerprint))) {
      fs.renameSync(this.pendingFile(fingerprint), file);
      fsyncDir(this.path);
    }
    if (!fs.existsSync(file)) throw new MasterKeyError(`master key ${fingerprint}: neither ${file} nor its .pending file exists`);
    return file;
  }
}

export type MasterKeySources = {
  /** A master key directory (see above). */
  dir?: string;
  files?: string[];
  /** Where SESAME_MASTER_KEY is read from (process.env by default; pass {} to ignore the environment). */
  env?: Record<string, string | undefined>;
};

/** All keys the sources hold, without duplicates (one key in two places counts once), and the pending ones. */
export function loadMasterKeys(src: MasterKeySources): KeyDirContents {
  const out = new Map<string, MasterKey>();
  const add = (k: MasterKey) => out.has(k.fingerprint) || out.set(k.fingerprint, k);
  const dir = src.dir === undefined ? { keys: [], pending: [], tightened: [] } : new MasterKeyDir(src.dir).load();
  dir.keys.forEach(add);
  for (const f of src.files ?? []) add(readMasterKeyFile(f));
  const env = (src.env ?? process.env).SESAME_MASTER_KEY;
  if (env !== undefined && env !== "") {
    if (!/^[0-9a-fA-F]{64}$/.test(env.trim())) throw new MasterKeyError("SESAME_MASTER_KEY: expected 64 hex characters");
    add(new MasterKey(Buffer.from(env.trim(), "hex")));
  }
  return { keys: [...out.values()], pending: dir.pending.filter((k) => !out.has(k.fingerprint)), tightened: dir.tightened };
}
