// The controller's one view of its database, whichever backend holds it: the embedded PGlite (Postgres
// compiled to WASM, no server to install) or a real Postgres. Both speak the same SQL, so the schema, the
// migrations and every query are written once. Drivers differ in how they return a few types (bytea as
// Uint8Array or Buffer, int8 as number or string), so queries cast int8 to int or text and callers read
// bytea through `bytes()`.

/** Anything SQL can be run on: the database itself or one transaction. */
export interface Queryable {
  /** One statement with $1.. parameters; returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: "pglite" | "postgres";
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls `fn` with the payload of each NOTIFY on `channel` (a plain identifier) until the returned function
   * is called. Best effort: a notification sent while the listening connection was being replaced is missed,
   * so a listener must also look for its work by itself now and then.
   */
  listen(channel: string, fn: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Brings the query planner's statistics up to date now, where the backend does not by itself (PGlite runs
   * no autovacuum: ./pglite.ts does it every STATS_EVERY_MS); Postgres's autovacuum does, and has none.
   */
  refreshStats?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A turn of the event loop between the queries of a long read: PGlite runs in the controller's own thread, so
 * without one the other work (MQTT, the backbone, admin calls) waits for the whole read.
 */
export const betweenQueries = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A bytea column's value as a Uint8Array (PGlite gives one, node-postgres a Buffer). */
export function bytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new Error("db: expected a bytea value, got " + (v === null ? "null" : typeof v));
}

/** A nullable bytea column. */
export function bytesOrNull(v: unknown): Uint8Array | null {
  return v === null || v === undefined ? null : bytes(v);
}
