// Commands in the database (migrations/003_cluster.sql): taken from MQTT by one controller, numbered per
// device, handed to the gateway the device was last heard through, closed by what that gateway reports.
// The id is the device's: every controller numbers its commands from the same counter, so a command handed
// again (another gateway, a restarted one, the same one after a failover) keeps its id and the device's
// receiver window runs it once (firmware/runtime/messages.ts).
import { MSG_ID_MAX } from "../../../firmware/runtime/messages";
import type { Db } from "../db/db";
import { bytes } from "../db/db";

/** Commands waiting for one device at most: past it a new one is refused (the MQTT client is told). */
export const MAX_UNCLOSED = 16;

export type CommandState = "open" | "sent" | "waiting" | "acked" | "lost" | "expired";

/** An unclosed command, with where its device was last heard (null: never). */
export type PendingCommand = { device: string; id: number; payload: Uint8Array; gateway: string | null; run: string | null };

type Row = { device: string; id: number; payload: unknown; gateway: string | null; run: string | null };
const pending = (r: Row): PendingCommand => ({ device: r.device, id: r.id, payload: bytes(r.payload), gateway: r.gateway, run: r.run });

const SELECT = `SELECT c.device, c.id, c.payload, r.gateway, r.gateway_run AS run FROM commands c LEFT JOIN routes r ON r.device = c.device`;

export class CommandBook {
  constructor(private readonly db: Db) {}

  /**
   * Stores a command for a live device under its next id, in one statement; returns the id, or why not
   * (unknown or revoked device, too many unclosed, ids used up).
   */
  async take(device: string, payload: Uint8Array, takenBy: string): Promise<{ id: number } | { rejected: string }> {
    const rows = await this.db.query<{ id: number }>(
      `WITH live AS (
         SELECT id FROM devices WHERE id = $1 AND revoked_at IS NULL
           AND (SELECT count(*) FROM commands WHERE device = $1 AND closed_at IS NULL) < $4),
       n AS (
         INSERT INTO command_counters (device, next) SELECT id, 1 FROM live
         ON CONFLICT (device) DO UPDATE SET next = command_counters.next + 1 WHERE command_counters.next <= $5
         RETURNING next - 1 AS id)
       INSERT INTO commands (device, id, payload, taken_by) SELECT $1, id, $2, $3 FROM n RETURNING id`,
      [device, payload, takenBy, MAX_UNCLOSED, MSG_ID_MAX],
    );
    if (rows.length === 1) return { id: rows[0].id };
    return { rejected: await this.whyNot(device) };
  }

  /** Unclosed commands of these devices (they were heard somewhere new: hand them all again). */
  async unclosedOf(devices: readonly string[]): Promise<PendingCommand[]> {
    if (devices.length === 0) return [];
    const rows = await this.db.query<Row>(`${SELECT} WHERE c.device = ANY($1::text[]) AND c.closed_at IS NULL ORDER BY c.device, c.id`, [devices]);
    return rows.map(pending);
  }

  /** Commands routed to these gateways that are `open` (never handed) or, with `handed`, `sent` too (to hand again). */
  async routedTo(gateways: readonly string[], handed: boolean): Promise<PendingCommand[]> {
    if (gateways.length === 0) return [];
    const rows = await this.db.query<Row>(
      `${SELECT} WHERE r.gateway = ANY($1::text[]) AND c.closed_at IS NULL AND (c.state = 'open' OR ($2 AND c.state = 'sent')) ORDER BY c.device, c.id`,
      [gateways, handed],
    );
    return rows.map(pending);
  }

  /** Handed to a gateway (`to`: its kid and run). */
  async sent(cs: readonly { device: string; id: number }[], to: string): Promise<void> {
    if (cs.length === 0) return;
    await this.db.query(
      `UPDATE commands c SET state = 'sent', sent_to = $3, sent_at = now() FROM unnest($1::text[], $2::int[]) AS t(d, i)
       WHERE c.device = t.d AND c.id = t.i AND c.closed_at IS NULL`,
      [cs.map((c) => c.device), cs.map((c) => c.id), to],
    );
  }

  /**
   * What a gateway reported: acked or lost close the command; waiting (the gateway had no session for the
   * device) leaves it for the device's next reading. Returns false when it was closed already.
   */
  async settle(device: string, id: number, state: "acked" | "lost" | "waiting"): Promise<boolean> {
    const closes = state !== "waiting";
    const rows = await this.db.query(
      `UPDATE commands SET state = $3, closed_at = CASE WHEN $4 THEN now() END WHERE device = $1 AND id = $2 AND closed_at IS NULL RETURNING 1`,
      [device, id, state, closes],
    );
    return rows.length === 1;
  }

  /** Closes commands unclosed for longer than `ttlMs` as expired; returns them. */
  async expire(ttlMs: number): Promise<{ device: string; id: number }[]> {
    return this.db.query<{ device: string; id: number }>(
      `UPDATE commands SET state = 'expired', closed_at = now() WHERE closed_at IS NULL AND created_at < now() - $1 * interval '1 millisecond' RETURNING device, id`,
      [ttlMs],
    );
  }

  /** Deletes commands closed more than `keepMs` ago (at most `limit`); returns how many. */
  async prune(keepMs: number, limit: number): Promise<number> {
    const rows = await this.db.query(
      `DELETE FROM commands WHERE ctid IN (SELECT ctid FROM commands WHERE closed_at < now() - $1 * interval '1 millisecond' LIMIT $2) RETURNING 1`,
      [keepMs, limit],
    );
    return rows.length;
  }

  /** A command's state, or undefined (tests and the admin side). */
  async state(device: string, id: number): Promise<CommandState | undefined> {
    const rows = await this.db.query<{ state: CommandState }>("SELECT state FROM commands WHERE device = $1 AND id = $2", [device, id]);
    return rows[0]?.state;
  }

  private async whyNot(device: string): Promise<string> {
    const rows = await this.db.query<{ revoked: boolean; unclosed: number; next: number | null }>(
      `SELECT d.revoked_at IS NOT NULL AS revoked, (SELECT count(*)::int FROM commands WHERE device = d.id AND closed_at IS NULL) AS unclosed,
         (SELECT next FROM command_counters WHERE device = d.id) AS next
       FROM devices d WHERE d.id = $1`,
      [device],
    );
    if (rows.length === 0) return "unknown device";
    const r = rows[0];
    if (r.revoked) return "device revoked";
    if (r.unclosed >= MAX_UNCLOSED) return `${MAX_UNCLOSED} commands already wait for this device`;
    if (r.next !== null && r.next > MSG_ID_MAX) return "this device's command ids are used up";
    return "not stored (try again)";
  }
}
