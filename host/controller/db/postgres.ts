// The server backend: a real Postgres through node-postgres, for a controller that outgrows one machine
// (several controllers can share it). A pool serves plain queries; a transaction holds one client from
// BEGIN to COMMIT; LISTEN has a client of its own (Listeners), opened on first use and replaced when lost.
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
  const listeners = new Listeners(url);
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
    listen: (channel, fn) => listeners.add(channel, fn),
    close: async () => {
      await listeners.close();
      await pool.end();
    },
  };
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The LISTEN connection: one client for every channel, reconnected a second after it is lost (the server
 * restarted, a network cut), listening again on every channel. Notifications sent meanwhile are missed.
 */
class Listeners {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly fns = new Map<string, Set<(payload: string) => void>>();
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly url: string) {}

  async add(channel: string, fn: (payload: string) => void): Promise<() => Promise<void>> {
    if (!IDENTIFIER.test(channel)) throw new RangeError(`postgres: a channel name must be a plain identifier, not ${JSON.stringify(channel)}`);
    let set = this.fns.get(channel);
    if (set === undefined) {
      set = new Set();
      this.fns.set(channel, set);
      await (await this.connect()).query(`LISTEN ${channel}`);
    }
    set.add(fn);
    return async () => {
      set.delete(fn);
      if (set.size > 0 || this.fns.get(channel) !== set) return;
      this.fns.delete(channel);
      await this.client?.query(`UNLISTEN ${channel}`).catch(() => {});
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const c = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await c?.end().catch(() => {});
  }

  private connect(): Promise<pg.Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const c = new pg.Client({ connectionString: this.url });
      c.on("notification", (n) => {
        for (const fn of this.fns.get(n.channel) ?? []) fn(n.payload ?? "");
      });
      // Lost: a new client listens again after a second (never an unhandled 'error' taking the process down).
      c.on("error", () => this.lost(c));
      c.on("end", () => this.lost(c));
      await c.connect();
      for (const channel of this.fns.keys()) await c.query(`LISTEN ${channel}`);
      this.client = c;
      return c;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private lost(c: pg.Client): void {
    if (this.client !== c) return;
    this.client = undefined;
    void c.end().catch(() => {});
    if (this.closed || this.fns.size === 0) return;
    const retry = () => {
      if (this.closed) return;
      this.connect().catch(() => (this.timer = setTimeout(retry, 1000)));
    };
    this.timer = setTimeout(retry, 1000);
  }
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
