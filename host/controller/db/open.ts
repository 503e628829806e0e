// Picks the backend from configuration and brings its schema up to date: a postgres:// URL means a real
// Postgres, anything else the embedded PGlite in a data directory (or in memory).
import type { Db } from "./db";
import { migrate } from "./migrate";
import { openPglite } from "./pglite";
import { openPostgres } from "./postgres";

export type DbOptions = {
  /** postgres://... or postgresql://...; when set, dataDir is ignored. */
  url?: string;
  /** The embedded database's directory (e.g. ".sesame/db"); undefined with no url = in memory. */
  dataDir?: string;
  /** Told when an existing data directory let others in (its modes are tightened: pglite.ts). */
  onTightened?: (dataDir: string, entries: number) => void;
};

export async function openDb(opts: DbOptions): Promise<Db> {
  let db: Db;
  if (opts.url !== undefined && opts.url !== "") {
    if (!/^postgres(ql)?:\/\//.test(opts.url)) throw new Error("database URL must start with postgres:// or postgresql://");
    db = await openPostgres(opts.url);
  } else {
    db = await openPglite(opts.dataDir, (n) => opts.onTightened?.(opts.dataDir!, n));
  }
  try {
    await migrate(db);
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
  return db;
}
