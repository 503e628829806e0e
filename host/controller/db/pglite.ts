// The embedded backend: PGlite keeps a whole Postgres in the controller's process, with its files in a data
// directory (e.g. .sesame/db) or in memory (tests). One connection only: PGlite runs queries one at a time
// and a transaction holds it exclusively, which is what a single-machine controller needs.
import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import type { Db, Queryable } from "./db";

type Runner = { query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>; exec(sql: string): Promise<unknown> };

function wrap(r: Runner): Queryable {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await r.query<T>(sql, params)).rows,
    exec: async (sql: string) => void (await r.exec(sql)),
  };
}

/** Opens (creating if needed) the embedded database in `dataDir`, or in memory when it is undefined. */
export async function openPglite(dataDir?: string): Promise<Db> {
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
  const pg = dataDir === undefined ? await PGlite.create() : await PGlite.create(dataDir);
  const base = wrap(pg as unknown as Runner);
  return {
    kind: "pglite",
    query: base.query,
    exec: base.exec,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => pg.transaction((tx) => fn(wrap(tx as unknown as Runner))),
    close: () => pg.close(),
  };
}
