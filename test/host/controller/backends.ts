// The two database backends every controller test runs against: the embedded PGlite (in memory) and a real
// Postgres started for the run (test/harness/postgres.ts), a fresh database per test.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb, type DbOptions } from "../../../host/controller/db/open";
import type { Db } from "../../../host/controller/db/db";
import { startPostgres, type TestPostgres } from "../../harness/postgres";

/** A fresh database's options: a Postgres URL, or a PGlite data directory (so a test can reopen it). */
export type Backend = { name: "pglite" | "postgres"; options(): Promise<DbOptions> };

let server: TestPostgres | undefined;
let starting: Promise<TestPostgres> | undefined;
let counter = 0;

/** The shared Postgres server, started on first use and stopped by stopSharedPostgres (root after hook). */
export async function sharedPostgres(): Promise<TestPostgres> {
  if (server) return server;
  starting ??= startPostgres();
  server = await starting;
  return server;
}

const dataDirs: string[] = [];

/** Stops the shared Postgres and removes the PGlite data directories (root after hook of each file). */
export async function stopSharedPostgres(): Promise<void> {
  for (const d of dataDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  const s = server ?? (starting ? await starting.catch(() => undefined) : undefined);
  server = undefined;
  starting = undefined;
  if (s) await s.stop();
}

export const BACKENDS: Backend[] = [
  {
    name: "pglite",
    options: async () => {
      const d = mkdtempSync(join(tmpdir(), "sesame-pglite-"));
      dataDirs.push(d);
      return { dataDir: d };
    },
  },
  { name: "postgres", options: async () => ({ url: await (await sharedPostgres()).createDatabase(`t${process.pid}_${++counter}`) }) },
];

/** A migrated, empty database on `b`. */
export async function freshDb(b: Backend): Promise<Db> {
  return openDb(await b.options());
}
