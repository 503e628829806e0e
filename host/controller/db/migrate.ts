// Numbered SQL migrations (migrations/NNN_name.sql), applied in order, each in its own transaction together
// with its row in schema_migrations. Re-running is a no-op. Two controllers starting at once on one
// Postgres serialise on an advisory lock, so a migration never runs twice. A migration that changed after
// it was applied is refused: the database and the code would disagree about the schema.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Db } from "./db";

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "migrations");

// Any fixed number; it names the lock only this code takes.
const LOCK_ID = 0x5e5a3e;

export type Migration = { version: number; name: string; file: string; sql: string; checksum: string };

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith(".sql")) continue;
    const m = /^(\d+)_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new Error(`migrations: ${file} is not named NNN_name.sql`);
    const sql = readFileSync(join(dir, file), "utf8");
    out.push({ version: Number(m[1]), name: m[2], file, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  for (let i = 1; i < out.length; i++) {
    if (out[i].version === out[i - 1].version) throw new Error(`migrations: two files numbered ${out[i].version}`);
  }
  return out;
}

/** Applies what is missing; returns the versions applied now (empty when the schema was current). */
export async function migrate(db: Db, dir = MIGRATIONS_DIR): Promise<number[]> {
  const all = readMigrations(dir);
  await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [LOCK_ID]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  });
  const applied: number[] = [];
  for (const m of all) {
    const done = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [LOCK_ID]);
      const rows = await tx.query<{ checksum: string }>("SELECT checksum FROM schema_migrations WHERE version = $1", [m.version]);
      if (rows.length > 0) {
        if (rows[0].checksum !== m.checksum) {
          throw new Error(`migrations: ${m.file} changed after it was applied; add a new migration instead`);
        }
        return false;
      }
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [m.version, m.name, m.checksum]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}
