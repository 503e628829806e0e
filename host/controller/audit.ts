// The append-only audit log of admin calls. The database refuses UPDATE, DELETE and TRUNCATE on it (a
// trigger, migrations/001_init.sql); this file only ever inserts. The actor is a token id, never a token,
// and nothing secret goes into detail (no configs, no keys, no request bodies).
import type { Db } from "./db/db";

export type AuditOutcome = "ok" | "denied" | "bad-request" | "not-found" | "rate-limited" | "error";

export type AuditEntry = {
  actor: string | null;
  action: string;
  target?: string | null;
  outcome: AuditOutcome;
  detail?: Record<string, unknown>;
};

export type AuditRecord = Required<AuditEntry> & { id: string; at: string };

export class AuditLog {
  constructor(private readonly db: Db) {}

  async append(e: AuditEntry): Promise<void> {
    await this.db.query("INSERT INTO audit (actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5)", [
      e.actor, e.action.slice(0, 200), e.target ?? null, e.outcome, JSON.stringify(e.detail ?? {}),
    ]);
  }

  /** Newest first. */
  async list(filter: { limit?: number; actor?: string; action?: string } = {}): Promise<AuditRecord[]> {
    const rows = await this.db.query<{ id: string; at: Date; actor: string | null; action: string; target: string | null; outcome: AuditOutcome; detail: Record<string, unknown> }>(
      `SELECT id::text AS id, at, actor, action, target, outcome, detail FROM audit
       WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2)
       ORDER BY audit.id DESC LIMIT $3`,
      [filter.actor ?? null, filter.action ?? null, filter.limit ?? 100],
    );
    return rows.map((r) => ({ ...r, at: r.at.toISOString() }));
  }
}
