// Master-key rotation without downtime. The new key is recorded as the next version and becomes the one
// new wraps use; then every wrapped row is re-wrapped in small batches, each its own transaction (rows
// locked only for the batch), while lookups go on reading rows under either version; finally the old
// versions are retired, in a transaction that checks no row still uses them. A controller stopped half-way
// resumes with both keys supplied (`finishRotation` at start).
import type { Db, Queryable } from "./db/db";
import { bytes } from "./db/db";
import { Keyring, type WrapKind } from "./keyring";
import { MasterKey, MasterKeyError } from "./masterkey";

/** retireOthers found a row still under an old version: roll the retirement back and re-wrap again. */
class RetryRotation extends Error {}

type WrappedColumn = { table: string; column: string; kind: WrapKind };

// Every place a master key wraps something. A new wrapped column must be added here.
const WRAPPED: WrappedColumn[] = [
  { table: "devices", column: "wrapped_key", kind: "device" },
  { table: "responder_keys", column: "wrapped_secret", kind: "responder" },
];

export type RotationResult = { version: number; fingerprint: string; rewrapped: number; retired: number[] };

export type RotationOptions = { batchSize?: number; onBatch?: (rewrappedSoFar: number) => void | Promise<void> };

/** Records `key` as the next version, re-wraps everything under it and retires the versions before it. */
export async function rotateMasterKey(db: Db, ring: Keyring, key: MasterKey, opts: RotationOptions = {}): Promise<RotationResult> {
  const version = await db.transaction(async (tx) => {
    await tx.query("LOCK TABLE master_keys IN EXCLUSIVE MODE");
    const same = await tx.query<{ version: number }>("SELECT version FROM master_keys WHERE fingerprint = $1", [key.fingerprint]);
    if (same.length > 0) throw new MasterKeyError(`master key ${key.fingerprint} is already version ${same[0].version}; a rotation needs a new key`);
    const top = await tx.query<{ v: number }>("SELECT coalesce(max(version), 0)::int AS v FROM master_keys");
    const v = top[0].v + 1;
    await tx.query("INSERT INTO master_keys (version, fingerprint) VALUES ($1, $2)", [v, key.fingerprint]);
    return v;
  });
  ring.addActive(version, key);
  const done = await finishRotation(db, ring, opts);
  return { version, fingerprint: key.fingerprint, rewrapped: done.rewrapped, retired: done.retired };
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
        if (opts.onBatch) await opts.onBatch(rewrapped);
      }
    }
    try {
      const retired = await db.transaction((tx) => retireOthers(tx, ring.active));
      for (const v of retired) if (ring.has(v)) ring.drop(v);
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
