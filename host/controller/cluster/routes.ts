// Where each device is reachable, and which controller serves which gateway, in the database
// (migrations/003_cluster.sql) rather than in one controller's memory.
//
// Routes: every reading says where its device was heard (`heard`, no database work); what changed since this
// controller last wrote a device's route (another gateway, another run of it, another link), or was written
// more than `refreshMs` ago, goes in one statement per flush. The gateway and its run are what commands
// follow: `flush` returns the devices whose gateway or run changed, whose unclosed commands must be handed
// again. A controller starts with no copy, so it writes each device's route once when it first hears it.
//
// Leases: a controller holds a row per gateway connected to it, renewed while the gateway stays; one that
// dies leaves rows that expire.
import type { Db } from "../db/db";

/** Where a device was heard: the gateway's kid, its run (its backbone run id, hex), and the link on it if known. */
export type Heard = { gateway: string; run: string; link: string | null };

/** What a route flush found: devices now reached through another gateway or another run of it. */
export type Moved = { device: string; gateway: string; run: string };

type Written = Heard & { at: number };

/** Routes this controller remembers having written (the rest are written again when heard). */
const MAX_REMEMBERED = 1_000_000;

export class RouteBook {
  private readonly written = new Map<string, Written>();
  private due = new Map<string, Heard & { moved: boolean }>();
  private flushing: Promise<unknown> = Promise.resolve();

  constructor(private readonly db: Db, private readonly me: string, private readonly refreshMs: number) {}

  /** A reading from `device` came through `h` at `now` (ms). Cheap: a map lookup, no query. */
  heard(device: string, h: Heard, now: number): void {
    const w = this.written.get(device);
    const moved = w === undefined || w.gateway !== h.gateway || w.run !== h.run;
    if (!moved && w.link === h.link && now - w.at < this.refreshMs) return;
    const d = this.due.get(device);
    this.due.set(device, { ...h, moved: moved || d?.moved === true });
  }

  /**
   * Writes the routes due in one statement; returns the devices that moved (their commands go again). One
   * flush at a time: one that resolves has everything heard before it was called written.
   */
  flush(now: number): Promise<Moved[]> {
    const run = this.flushing.catch(() => undefined).then(() => this.write(now));
    this.flushing = run;
    return run;
  }

  private async write(now: number): Promise<Moved[]> {
    if (this.due.size === 0) return [];
    const due = this.due;
    this.due = new Map();
    const ds = [...due.keys()], hs = [...due.values()];
    try {
      await this.db.query(
        `INSERT INTO routes (device, gateway, gateway_run, link, controller, heard_at)
         SELECT d, g, r, l, $5, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(d, g, r, l)
         ON CONFLICT (device) DO UPDATE SET gateway = excluded.gateway, gateway_run = excluded.gateway_run, link = excluded.link,
           controller = excluded.controller, heard_at = excluded.heard_at`,
        [ds, hs.map((h) => h.gateway), hs.map((h) => h.run), hs.map((h) => h.link), this.me],
      );
    } catch (e) {
      // Due again next time (unless heard meanwhile, which is newer).
      for (const [d, h] of due) if (!this.due.has(d)) this.due.set(d, h);
      throw e;
    }
    if (this.written.size + ds.length > MAX_REMEMBERED) this.written.clear();
    for (let i = 0; i < ds.length; i++) this.written.set(ds[i], { gateway: hs[i].gateway, run: hs[i].run, link: hs[i].link, at: now });
    return ds.flatMap((d, i) => (hs[i].moved ? [{ device: d, gateway: hs[i].gateway, run: hs[i].run }] : []));
  }

  /** Forgets what this controller wrote for `device`: its next reading writes its route again, as moved. */
  forget(device: string): void {
    this.written.delete(device);
  }

  /** Where `device` was last heard, by any controller. */
  async route(device: string): Promise<(Heard & { controller: string; heardAt: Date }) | undefined> {
    const rows = await this.db.query<{ gateway: string; gateway_run: string; link: string | null; controller: string; heard_at: Date }>(
      "SELECT gateway, gateway_run, link, controller, heard_at FROM routes WHERE device = $1", [device]);
    const r = rows[0];
    return r && { gateway: r.gateway, run: r.gateway_run, link: r.link, controller: r.controller, heardAt: r.heard_at };
  }

  /** Devices heard from within `windowMs` (by any controller; up to refreshMs late). */
  async online(windowMs: number): Promise<number> {
    const rows = await this.db.query<{ n: number }>("SELECT count(*)::int AS n FROM routes WHERE heard_at > now() - $1 * interval '1 millisecond'", [windowMs]);
    return rows[0].n;
  }
}

export type GatewayLease = { gateway: string; controller: string; run: string; mode: string; since: Date; leaseUntil: Date };

export class GatewayLeases {
  constructor(private readonly db: Db, private readonly me: string, private readonly leaseMs: number) {}

  /** A gateway connected here; returns who held it before (its controller and run), if anyone did. */
  async up(gateway: string, run: string, mode: string): Promise<{ controller: string; run: string } | undefined> {
    const rows = await this.db.transaction(async (tx) => {
      const before = await tx.query<{ controller: string; gateway_run: string }>("SELECT controller, gateway_run FROM gateway_leases WHERE gateway = $1 FOR UPDATE", [gateway]);
      await tx.query(
        `INSERT INTO gateway_leases (gateway, controller, gateway_run, mode, lease_until) VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
         ON CONFLICT (gateway) DO UPDATE SET controller = $2, gateway_run = $3, mode = $4, since = now(), lease_until = excluded.lease_until`,
        [gateway, this.me, run, mode, this.leaseMs],
      );
      return before;
    });
    return rows[0] && { controller: rows[0].controller, run: rows[0].gateway_run };
  }

  /**
   * A gateway left this controller: its lease ends now (if another holds it by now, that one's stays). The
   * row keeps its holder, so a gateway that comes back to this controller finds its sessions still here.
   */
  async down(gateway: string): Promise<void> {
    await this.db.query("UPDATE gateway_leases SET lease_until = now() WHERE gateway = $1 AND controller = $2", [gateway, this.me]);
  }

  /** Renews this controller's rows for the gateways still connected to it. */
  async renew(gateways: readonly string[]): Promise<void> {
    if (gateways.length === 0) return;
    await this.db.query(
      "UPDATE gateway_leases SET lease_until = now() + $3 * interval '1 millisecond' WHERE controller = $1 AND gateway = ANY($2::text[])",
      [this.me, gateways, this.leaseMs],
    );
  }

  /** Every live lease: which controller serves which gateway. */
  async list(): Promise<GatewayLease[]> {
    const rows = await this.db.query<{ gateway: string; controller: string; gateway_run: string; mode: string; since: Date; lease_until: Date }>(
      "SELECT gateway, controller, gateway_run, mode, since, lease_until FROM gateway_leases WHERE lease_until > now() ORDER BY gateway");
    return rows.map((r) => ({ gateway: r.gateway, controller: r.controller, run: r.gateway_run, mode: r.mode, since: r.since, leaseUntil: r.lease_until }));
  }
}
