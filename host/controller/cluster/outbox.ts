// The readings outbox in the database (migrations/003_cluster.sql): the one point of truth that makes a
// reading reach MQTT once however many controllers saw it. Each call is one statement, whatever the number of
// rows (arrays in, unnest in SQL), so a batch of readings costs one round trip to store and one to mark.
//
// A row is claimed by one controller at a time: its inserter at once, or whoever takes it over once its
// claimer stopped beating (`controllers.heartbeat_at` older than the lease, by the database's clock) or
// released it (FOR UPDATE SKIP LOCKED: two controllers sweeping together never take the same row). A live
// controller renews every claim it holds with one statement, its heartbeat, however many rows it holds.
import type { Db } from "../db/db";
import { bytes } from "../db/db";

export type ReadingMode = "terminate" | "relay";

/** A reading as stored: the registry's device id, its message id, the gateway (kid) it came through. */
export type Reading = { device: string; id: number; gateway: string; mode: ReadingMode; body: Uint8Array; receivedMs: number };

/** Names a reading for good: its device and message id. */
export type ReadingKey = { device: string; id: number };

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
const devices = (ks: readonly ReadingKey[]) => ks.map((k) => k.device);
const ids = (ks: readonly ReadingKey[]) => ks.map((k) => k.id);
const keyOf = (device: string, id: number) => `${device}/${id}`;

type Row = { device: string; msg_id: number; gateway: string; mode: ReadingMode; body: unknown; received_ms: string; was: string | null };

export class Outbox {
  /** `me`: this controller's id, the claims' owner; `leaseMs`: how long its claims last without a heartbeat. */
  constructor(private readonly db: Db, private readonly me: string, private readonly leaseMs: number) {}

  /**
   * Stores the readings, claimed by this controller, in one statement. Returns, per reading, whether it is
   * new (to publish) or was already there (a copy: stored before by this or another controller).
   */
  async insert(rs: readonly Reading[]): Promise<boolean[]> {
    if (rs.length === 0) return [];
    const rows = await this.db.query<{ device: string; msg_id: number }>(
      `INSERT INTO outbox (device, msg_id, gateway, mode, body, received_ms, claimed_by)
       SELECT d, m, g, o, decode(b, 'hex'), r, $7
       FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS t(d, m, g, o, b, r)
       ON CONFLICT (device, msg_id) DO NOTHING RETURNING device, msg_id`,
      [devices(rs), ids(rs), rs.map((r) => r.gateway), rs.map((r) => r.mode), rs.map((r) => hex(r.body)), rs.map((r) => r.receivedMs), this.me],
    );
    const fresh = new Set(rows.map((r) => keyOf(r.device, r.msg_id)));
    // A reading twice in one batch: the first is the one inserted.
    return rs.map((r) => fresh.delete(keyOf(r.device, r.id)));
  }

  /** The broker has these (PUBACK): they are never published again. */
  async published(ks: readonly ReadingKey[]): Promise<void> {
    if (ks.length === 0) return;
    await this.db.query(
      `UPDATE outbox o SET published_at = now(), claimed_by = NULL
       FROM unnest($1::text[], $2::int[]) AS t(d, m) WHERE o.device = t.d AND o.msg_id = t.m AND o.published_at IS NULL`,
      [devices(ks), ids(ks)],
    );
  }

  /** This controller could not publish these (dropped, refused): any controller may take them at once. */
  async release(ks: readonly ReadingKey[]): Promise<void> {
    if (ks.length === 0) return;
    await this.db.query(
      `UPDATE outbox o SET claimed_by = NULL
       FROM unnest($1::text[], $2::int[]) AS t(d, m) WHERE o.device = t.d AND o.msg_id = t.m AND o.claimed_by = $3 AND o.published_at IS NULL`,
      [devices(ks), ids(ks), this.me],
    );
  }

  /** Those of `ks` still claimed by this controller and unpublished (after its claims may have run out). */
  async stillClaimed(ks: readonly ReadingKey[]): Promise<ReadingKey[]> {
    if (ks.length === 0) return [];
    const rows = await this.db.query<{ device: string; msg_id: number }>(
      `SELECT o.device, o.msg_id FROM outbox o JOIN unnest($1::text[], $2::int[]) AS t(d, m) ON o.device = t.d AND o.msg_id = t.m
       WHERE o.claimed_by = $3 AND o.published_at IS NULL`,
      [devices(ks), ids(ks), this.me],
    );
    return rows.map((r) => ({ device: r.device, id: r.msg_id }));
  }

  /** This controller is alive: every claim it holds lasts another lease. One row, whatever it holds. */
  async beat(): Promise<void> {
    await this.db.query(
      "INSERT INTO controllers (id, lease_ms) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()", [this.me, this.leaseMs]);
  }

  /** Forgets controller runs silent for `ms` (their claims were taken over long ago). */
  async forgetDead(ms: number): Promise<number> {
    const rows = await this.db.query("DELETE FROM controllers WHERE heartbeat_at < now() - $1 * interval '1 millisecond' RETURNING 1", [ms]);
    return rows.length;
  }

  /**
   * Claims up to `limit` unpublished rows no live controller holds, oldest first (without `othersToo`, only
   * released ones). `fromOthers` counts those another controller had claimed (it died, or stopped beating);
   * the rest were released.
   */
  async takeOver(limit: number, othersToo = true): Promise<{ rows: Reading[]; fromOthers: number; others: boolean[] }> {
    const rows = await this.db.query<Row>(
      `WITH live AS (SELECT id FROM controllers WHERE heartbeat_at > now() - lease_ms * interval '1 millisecond'),
       due AS (
         SELECT device, msg_id, claimed_by AS was FROM outbox
         WHERE published_at IS NULL AND (claimed_by IS NULL OR ($3 AND claimed_by NOT IN (SELECT id FROM live)))
         ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE outbox o SET claimed_by = $1
       FROM due WHERE o.device = due.device AND o.msg_id = due.msg_id
       RETURNING o.device, o.msg_id, o.gateway, o.mode, o.body, o.received_ms::text AS received_ms, due.was`,
      [this.me, limit, othersToo],
    );
    return {
      rows: rows.map((r) => ({ device: r.device, id: r.msg_id, gateway: r.gateway, mode: r.mode, body: bytes(r.body), receivedMs: Number(r.received_ms) })),
      fromOthers: rows.filter((r) => r.was !== null && r.was !== this.me).length,
      others: rows.map((r) => r.was !== null && r.was !== this.me),
    };
  }

  /** Deletes up to `limit` published rows older than the dedup window; returns how many. */
  async prune(windowMs: number, limit: number): Promise<number> {
    const rows = await this.db.query(
      `DELETE FROM outbox WHERE ctid IN (
         SELECT ctid FROM outbox WHERE published_at IS NOT NULL AND created_at < now() - $1 * interval '1 millisecond' LIMIT $2)
       RETURNING 1`,
      [windowMs, limit],
    );
    return rows.length;
  }

  /** Rows not yet published (a gauge: what the cluster still owes MQTT). */
  async unpublished(): Promise<number> {
    const rows = await this.db.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL");
    return rows[0].n;
  }
}
