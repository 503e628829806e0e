// The embedded backend: PGlite keeps a whole Postgres in the controller's process, with its files in a data
// directory (e.g. .sesame/db) or in memory (tests). One connection only: PGlite runs queries one at a time
// and a transaction holds it exclusively, which is what a single-machine controller needs.
//
// The data directory holds the audit log the database keeps append-only, and every wrapped key: it is its
// owner's alone (0700, files 0600). PGlite unpacks a new data directory with files 0666 whatever the umask,
// and an older sesame left them so: both are tightened here (the files Postgres makes later are 0600 by itself).
import { PGlite } from "@electric-sql/pglite";
import { privateDir, tightenTree } from "../private-files";
import { betweenQueries, type Db, type Queryable } from "./db";

type Runner = { query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>; exec(sql: string): Promise<unknown> };

function wrap(r: Runner): Queryable {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await r.query<T>(sql, params)).rows,
    exec: async (sql: string) => void (await r.exec(sql)),
  };
}

/**
 * How often the planner's statistics are brought up to date (ANALYZE, a table at a time, a turn of the event
 * loop between tables): PGlite runs no autovacuum, so a table kept the statistics it had when it was made,
 * empty. At 100,000 open sessions the planner then took the open sessions' index for 876 rows and sorted all
 * 100,000 for each page of 2,000 the console's fleet view reads (45-100 ms a page); with statistics, an index
 * scan (2-7 ms). ANALYZE took 208 ms in all at 100,000 devices and 300,000 sessions. Statistics are kept in
 * the data directory, so a restarted controller starts with the last ones.
 */
export const STATS_EVERY_MS = 10 * 60_000;
/** The first refresh after opening: soon, but not in the way of a start (nor of a test's short-lived database). */
const STATS_FIRST_MS = 30_000;

/**
 * Opens (creating if needed) the embedded database in `dataDir`, or in memory when it is undefined.
 * `onTightened` hears how many entries of an existing data directory let others in (and no longer do).
 */
export async function openPglite(dataDir?: string, onTightened?: (entries: number) => void, statsEveryMs = STATS_EVERY_MS): Promise<Db> {
  if (dataDir !== undefined) {
    privateDir(dataDir);
    const open = tightenTree(dataDir);
    if (open > 0) onTightened?.(open);
  }
  const pg = dataDir === undefined ? await PGlite.create() : await PGlite.create(dataDir);
  if (dataDir !== undefined) tightenTree(dataDir);
  const base = wrap(pg as unknown as Runner);
  let analyzing: Promise<void> | undefined;
  const analyze = async () => {
    for (const { t } of await base.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")) {
      await base.exec(`ANALYZE "${t}"`);
      await betweenQueries();
    }
  };
  const refreshStats = () => (analyzing ??= analyze().finally(() => (analyzing = undefined)));
  const every = (ms: number) => {
    timer = setTimeout(() => {
      void refreshStats().catch(() => {}); // a closed database: the timer is gone too
      every(statsEveryMs);
    }, ms);
    timer.unref();
  };
  let timer: NodeJS.Timeout | undefined;
  every(Math.min(STATS_FIRST_MS, statsEveryMs));
  return {
    kind: "pglite",
    query: base.query,
    exec: base.exec,
    refreshStats,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => pg.transaction((tx) => fn(wrap(tx as unknown as Runner))),
    listen: async (channel, fn) => {
      const stop = await pg.listen(channel, fn);
      return () => stop();
    },
    close: async () => {
      clearTimeout(timer);
      await analyzing?.catch(() => {});
      await pg.close();
    },
  };
}
