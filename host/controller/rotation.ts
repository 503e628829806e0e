// Master-key rotation without downtime. The new key is recorded as the next version and becomes the one
// new wraps use; then every wrapped row is re-wrapped in small batches, each its own transaction (rows
// locked only for the batch), while lookups go on reading rows under either version; finally the old
// versions are retired, in a transaction that checks no row still uses them. A controller stopped half-way
// resumes with both keys supplied (`finishRotation` at start). The key files are the store's concern
// (store.ts, keydir.ts): it calls recordMasterKey and finishRotation with the key's file made durable between.
import type { Db, Queryable } from "./db/db";
import { bytes } from "./db/db";
import { Keyring, type WrapKind } from "./keyring";
import { MasterKeyError, type MasterKey } from "./masterkey";

/** retireOthers found a row still under an old version: roll the retirement back and re-wrap again. */
class RetryRotation extends Error {}

type WrappedColumn = { table: string; column: string; kind: WrapKind };

// Every place a master key wraps something. A new wrapped column must be added here.
const WRAPPED: WrappedColumn[] = [
  { table: "devices", column: "wrapped_key", kind: "device" },
  { table: "responder_keys", column: "wrapped_secret", kind: "responder" },
  { table: "device_sessions", column: "wrapped_state", kind: "session" },
];

export type RotationResult = { version: number; fingerprint: string; rewrapped: number; retired: number[]; keyFile?: string };

/** The points a rotation passes, in order ("staged" and "recorded" come from the store, which owns the key files). */
export type RotationStep = "staged" | "recorded" | "rewrapped" | "retiring" | "retired";

export type RotationOptions = {
  /** Rows re-wrapped per transaction. */
  batchSize?: number;
  /** Called as each step completes (after every batch for "rewrapped"); a rotation waits for it. */
  onStep?: (step: RotationStep, facts: Record<string, unknown>) => void | Promise<void>;
};

/** Records `key` as the next version (refusing a key the database already knows); returns the version. */
export async function recordMasterKey(db: Db, key: MasterKey): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.query("LOCK TABLE master_keys IN EXCLUSIVE MODE");
    await refuseKnownKey(tx, key);
    const top = await tx.query<{ v: number }>("SELECT coalesce(max(version), 0)::int AS v FROM master_keys");
    const v = top[0].v + 1;
    await tx.query("INSERT INTO master_keys (version, fingerprint) VALUES ($1, $2)", [v, key.fingerprint]);
    return v;
  });
}

/** A rotation needs a key the database has never seen. */
export async function refuseKnownKey(q: Queryable, key: MasterKey): Promise<void> {
  const rows = await q.query<{ version: number }>("SELECT version FROM master_keys WHERE fingerprint = $1", [key.fingerprint]);
  if (rows.length > 0) throw new MasterKeyError(`master key ${key.fingerprint} is already version ${rows[0].version}; a rotation needs a new key`);
}

/** Re-wraps every row not under the active version, then retires the other versions. */
export async function finishRotation(db: Db, ring: Keyring, opts: RotationOptions = {}): Promise<{ rewrapped: number; retired: number[] }> {
  const batch = opts.batchSize ?? 100;
  let rewrapped = 0;
  for (;;) {
    for (const c of WRAPPED) {
      for (;;) {
        const n = await db.transaction((tx) => rewrapBatch(tx, ring, c, batch));
        if (n === 0) break;
        rewrapped += n;
        await opts.onStep?.("rewrapped", { version: ring.active, rows: rewrapped });
      }
    }
    await opts.onStep?.("retiring", { version: ring.active, rows: rewrapped });
    try {
      const retired = await db.transaction((tx) => retireOthers(tx, ring.active));
      for (const v of retired) if (ring.has(v)) ring.drop(v);
      await opts.onStep?.("retired", { version: ring.active, rows: rewrapped, retired });
      return { rewrapped, retired };
    } catch (e) {
      // A row was written under an old version after its batch ran: go round once more.
      if (!(e instanceof RetryRotation)) throw e;
    }
  }
}

async function rewrapBatch(tx: Queryable, ring: Keyring, c: WrappedColumn, batch: number): Promise<number> {
  const target = ring.active;
  const rows = await tx.query<{ id: string; w: unknown; v: number }>(
    `SELECT id, ${c.column} AS w, wrap_version AS v FROM ${c.table}
     WHERE wrap_version IS NOT NULL AND wrap_version <> $1 ORDER BY id LIMIT $2 FOR UPDATE`,
    [target, batch],
  );
  for (const r of rows) {
    const plain = ring.unwrap(c.kind, r.id, { wrapped: bytes(r.w), version: r.v });
    try {
      const w = ring.wrapWith(target, c.kind, r.id, plain);
      await tx.query(`UPDATE ${c.table} SET ${c.column} = $1, wrap_version = $2 WHERE id = $3`, [w, target, r.id]);
    } finally {
      plain.fill(0);
    }
  }
  return rows.length;
}

/** Retires every version but `active`; throws RetryRotation (rolling the retirement back) if a row still uses one. */
async function retireOthers(tx: Queryable, active: number): Promise<number[]> {
  // Taking the row locks first waits for writers that share-locked an old version (Keyring.wrapForWrite)
  // to commit, so the count below sees their rows.
  const old = await tx.query<{ version: number }>(
    "UPDATE master_keys SET retired_at = now() WHERE version <> $1 AND retired_at IS NULL RETURNING version",
    [active],
  );
  for (const c of WRAPPED) {
    const left = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${c.table} WHERE wrap_version IS NOT NULL AND wrap_version <> $1`,
      [active],
    );
    if (left[0].n > 0) throw new RetryRotation();
  }
  return old.map((r) => r.version).sort((a, b) => a - b);
}
