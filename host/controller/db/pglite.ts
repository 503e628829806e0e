// The embedded backend: PGlite keeps a whole Postgres in the controller's process, with its files in a data
// directory (e.g. .sesame/db) or in memory (tests). One connection only: PGlite runs queries one at a time
// and a transaction holds it exclusively, which is what a single-machine controller needs.
//
// The data directory holds the audit log the database keeps append-only, and every wrapped key: it is its
// owner's alone (0700, files 0600). PGlite unpacks a new data directory with files 0666 whatever the umask,
// and an older sesame left them so: both are tightened here (the files Postgres makes later are 0600 by itself).
import { PGlite } from "@electric-sql/pglite";
import { privateDir, tightenTree } from "../private-files";
import type { Db, Queryable } from "./db";

type Runner = { query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>; exec(sql: string): Promise<unknown> };

function wrap(r: Runner): Queryable {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await r.query<T>(sql, params)).rows,
    exec: async (sql: string) => void (await r.exec(sql)),
  };
}

/**
 * Opens (creating if needed) the embedded database in `dataDir`, or in memory when it is undefined.
 * `onTightened` hears how many entries of an existing data directory let others in (and no longer do).
 */
export async function openPglite(dataDir?: string, onTightened?: (entries: number) => void): Promise<Db> {
  if (dataDir !== undefined) {
    privateDir(dataDir);
    const open = tightenTree(dataDir);
    if (open > 0) onTightened?.(open);
  }
  const pg = dataDir === undefined ? await PGlite.create() : await PGlite.create(dataDir);
  if (dataDir !== undefined) tightenTree(dataDir);
  const base = wrap(pg as unknown as Runner);
  return {
    kind: "pglite",
    query: base.query,
    exec: base.exec,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => pg.transaction((tx) => fn(wrap(tx as unknown as Runner))),
    listen: async (channel, fn) => {
      const stop = await pg.listen(channel, fn);
      return () => stop();
    },
    close: () => pg.close(),
  };
}
