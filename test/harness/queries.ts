// Records the SQL a database is asked to run, for tests that count reads (a whole registry read, one query
// for many keys): the queries still run.
import type { Db } from "../../host/controller/db/db";

/** Starts recording `db`'s queries; `stop()` puts its own query method back. */
export function recordQueries(db: Db): { queries: string[]; stop: () => void } {
  const queries: string[] = [];
  const query = db.query.bind(db);
  db.query = ((sql: string, params?: unknown[]) => (queries.push(sql), query(sql, params))) as Db["query"];
  return { queries, stop: () => void (db.query = query) };
}
