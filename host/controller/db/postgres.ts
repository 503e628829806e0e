// The server backend: a real Postgres through node-postgres, for a controller that outgrows one machine
// (several controllers can share it). A pool serves plain queries; a transaction holds one client from
// BEGIN to COMMIT.
import pg from "pg";
import type { Db, Queryable } from "./db";

function runner(c: pg.Pool | pg.PoolClient): Queryable {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await c.query(sql, params as unknown[])).rows as T[],
    exec: async (sql: string) => void (await c.query(sql)),
  };
}

/** Connects to `url` (postgres://user@host:port/db, or a unix socket via ?host=/dir). Fails fast if unreachable. */
export async function openPostgres(url: string, poolSize = 10): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client losing its server must not crash the process; the next query reports the error instead.
  pool.on("error", () => {});
  const probe = await pool.connect().catch(async (e: Error) => {
    await pool.end().catch(() => {});
    throw new Error("postgres: cannot connect to " + redact(url) + ": " + e.message);
  });
  probe.release();
  const base = runner(pool);
  return {
    kind: "postgres",
    query: base.query,
    exec: base.exec,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const c = await pool.connect();
      try {
        await c.query("BEGIN");
        const out = await fn(runner(c));
        await c.query("COMMIT");
        return out;
      } catch (e) {
        await c.query("ROLLBACK").catch(() => {});
        throw e;
      } finally {
        c.release();
      }
    },
    close: () => pool.end(),
  };
}

/** The URL without its password, for error messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable database URL)";
  }
}
