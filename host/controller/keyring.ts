// The master keys a running controller holds, by version, matched against the master_keys table by
// fingerprint. New wraps use the active (newest unretired) version; unwraps use whatever version the row
// says, so rows wrapped under an older key stay readable while a rotation re-wraps them.
//
// What each wrapped value is bound to (the AAD): its kind, its row's id and the master-key version, so a
// wrapped key copied into another row, or relabelled with another version, fails to unwrap.
import type { Db, Queryable } from "./db/db";
import { MasterKey, MasterKeyError } from "./masterkey";

export type WrapKind = "device" | "responder" | "session";

export function wrapAad(kind: WrapKind, id: string, version: number): Uint8Array {
  return Buffer.from(`sesame keywrap v1\0${kind}\0${id}\0${version}`, "utf8");
}

export type WrappedValue = { wrapped: Uint8Array; version: number };

export class Keyring {
  private readonly keys = new Map<number, MasterKey>();
  private activeVersion = 0;

  /**
   * Matches `supplied` against the database. First start (no master key recorded): exactly one key, which
   * becomes version 1. Later: every unretired version must be supplied (rows may be wrapped with it), and
   * every supplied key must be known (a wrong key file is an error, not a silent new key). `pending` keys
   * (keydir.ts: written for a rotation that may not have been recorded) count only if the database knows
   * them; at a first start with nothing else supplied, a single pending key is the one to record.
   * Returns the pending keys the database knew, which the caller renames into key files.
   */
  static async open(db: Db, supplied: MasterKey[], pending: MasterKey[] = []): Promise<{ ring: Keyring; recorded: MasterKey[] }> {
    const ring = new Keyring();
    const recorded: MasterKey[] = [];
    await db.transaction(async (tx) => {
      await tx.query("LOCK TABLE master_keys IN EXCLUSIVE MODE");
      const rows = await tx.query<{ version: number; fingerprint: string; retired: boolean }>(
        "SELECT version, fingerprint, retired_at IS NOT NULL AS retired FROM master_keys ORDER BY version",
      );
      const known = new Set(rows.map((r) => r.fingerprint));
      let keys = [...supplied, ...pending.filter((k) => known.has(k.fingerprint))];
      if (rows.length === 0 && supplied.length === 0 && pending.length === 1) keys = pending;
      if (keys.length === 0) {
        throw new MasterKeyError("no master key: set SESAME_MASTER_KEY (64 hex characters) or give a key file or key directory");
      }
      if (rows.length === 0) {
        if (keys.length !== 1) throw new MasterKeyError(`first start needs exactly one master key, ${keys.length} were given`);
        await tx.query("INSERT INTO master_keys (version, fingerprint) VALUES (1, $1)", [keys[0].fingerprint]);
        rows.push({ version: 1, fingerprint: keys[0].fingerprint, retired: false });
      }
      const byFp = new Map(keys.map((k) => [k.fingerprint, k]));
      const missing: string[] = [];
      for (const r of rows) {
        const k = byFp.get(r.fingerprint);
        byFp.delete(r.fingerprint);
        if (k !== undefined && pending.includes(k)) recorded.push(k);
        if (r.retired) continue;
        if (k === undefined) missing.push(`v${r.version} (fingerprint ${r.fingerprint})`);
        else ring.keys.set(r.version, k);
      }
      // An unknown key first: a wrong key file is the likelier mistake, and it explains the missing one.
      if (byFp.size > 0) {
        const list = rows.map((r) => `v${r.version} ${r.fingerprint}${r.retired ? " (retired)" : ""}`).join(", ");
        throw new MasterKeyError(`master key ${[...byFp.keys()].join(", ")} is not known to this database (known: ${list})`);
      }
      if (missing.length > 0) throw new MasterKeyError(`master key ${missing.join(", ")} is needed but was not supplied`);
      ring.activeVersion = Math.max(...ring.keys.keys());
    });
    return { ring, recorded };
  }

  get active(): number {
    return this.activeVersion;
  }

  versions(): number[] {
    return [...this.keys.keys()].sort((a, b) => a - b);
  }

  fingerprint(version: number): string | undefined {
    return this.keys.get(version)?.fingerprint;
  }

  has(version: number): boolean {
    return this.keys.has(version);
  }

  /** Starts wrapping with `key` as `version` (the rotation has recorded it). */
  addActive(version: number, key: MasterKey): void {
    this.keys.set(version, key);
    this.activeVersion = version;
  }

  /** Forgets a retired version (no row uses it any more). */
  drop(version: number): void {
    if (version === this.activeVersion) throw new Error("keyring: cannot drop the active master key");
    this.keys.delete(version);
  }

  wrapWith(version: number, kind: WrapKind, id: string, plain: Uint8Array): Uint8Array {
    const k = this.keys.get(version);
    if (k === undefined) throw new MasterKeyError(`master key v${version} is not loaded`);
    return k.wrap(plain, wrapAad(kind, id, version));
  }

  unwrap(kind: WrapKind, id: string, w: WrappedValue): Uint8Array {
    const k = this.keys.get(w.version);
    if (k === undefined) throw new StaleVersionError(w.version);
    return k.unwrap(w.wrapped, wrapAad(kind, id, w.version));
  }

  /**
   * Wraps `plain` for a row written inside `tx` and runs `write` with the result. The master_keys row of
   * the version used is share-locked until `tx` ends, so a rotation cannot retire that version between
   * this wrap and its commit; if it was retired just before, the wrap is redone under the new active key.
   */
  async wrapForWrite<T>(tx: Queryable, kind: WrapKind, id: string, plain: Uint8Array, write: (w: WrappedValue) => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const version = this.activeVersion;
      const live = await tx.query("SELECT 1 FROM master_keys WHERE version = $1 AND retired_at IS NULL FOR SHARE", [version]);
      if (live.length === 1) return write({ wrapped: this.wrapWith(version, kind, id, plain), version });
    }
    throw new MasterKeyError(`master key v${this.activeVersion} is retired in the database; restart the controller with the current key`);
  }
}

/** A row's wrap version is no longer loaded: a rotation re-wrapped it after it was read. Read it again. */
export class StaleVersionError extends MasterKeyError {
  constructor(readonly version: number) {
    super(`master key v${version} is not loaded (retired, or not supplied)`);
  }
}
