// What several controllers on one database share, in one place: the readings outbox, the commands, the
// routes and the gateway leases (./outbox.ts, ./readings.ts, ./commands.ts, ./dispatch.ts, ./routes.ts),
// and the timer that keeps them moving. A single controller on the embedded database runs the same code:
// there is one way readings and commands go, whether one controller runs or several.
//
// Each controller run has an id of its own (host:port/random), which names its claims and leases: a
// restarted controller is a new run, and what its previous run held is taken over once the leases run out.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "../../telemetry/log";
import { bytes, type Db } from "../db/db";
import { CommandBook } from "./commands";
import { CommandDispatch, type Hand } from "./dispatch";
import { Outbox, type Reading } from "./outbox";
import { Readings } from "./readings";
import { GatewayLeases, RouteBook, type Heard } from "./routes";

export type ClusterTiming = {
  /** How long a controller's claims on readings, or its lease on a gateway, last without a renewal (ms). */
  leaseMs: number;
  /** Renew, take over, route writes and the command backstop run this often (ms). */
  sweepMs: number;
  /** Published readings are kept this long, so a late copy is still recognised (ms). */
  dedupWindowMs: number;
  /** A device's route is written again at most this often while nothing changes (ms). */
  routeRefreshMs: number;
  /** A command not acknowledged or lost by then is closed as expired (ms). */
  commandTtlMs: number;
};

export const DEFAULT_TIMING: ClusterTiming = { leaseMs: 5_000, sweepMs: 1_000, dedupWindowMs: 600_000, routeRefreshMs: 30_000, commandTtlMs: 3_600_000 };

/**
 * Records the cluster's backbone public key (the first controller's), or checks this one holds the same: a
 * controller with another key file would take gateway leases no gateway could ever reach it for.
 */
export async function checkBackboneKey(db: Db, publicKey: Uint8Array): Promise<void> {
  await db.query("INSERT INTO backbone_key (public_key) VALUES ($1) ON CONFLICT (only_row) DO NOTHING", [publicKey]);
  const rows = await db.query<{ public_key: unknown }>("SELECT public_key FROM backbone_key");
  const theirs = Buffer.from(bytes(rows[0].public_key)).toString("hex"), mine = Buffer.from(publicKey).toString("hex");
  if (theirs !== mine) {
    throw new Error(`this database's controllers use the backbone key ${theirs} (gateways pin it), and this controller's key file holds ${mine}: ` +
      "give every controller a copy of the same key file (--key-file); to change the cluster's key on purpose, DELETE FROM backbone_key and reconfigure every gateway");
  }
}

/** A new controller run's id: where it runs, and random bytes so two runs never share one. */
export function controllerRunId(backbonePort: number): string {
  return `${hostname()}:${backbonePort}/${randomBytes(3).toString("hex")}`;
}

export type ClusterOptions = {
  db: Db;
  me: string;
  timing?: Partial<ClusterTiming>;
  log: Logger;
  publish: (r: Reading, done: (ok: boolean) => void) => void;
  canPublish: () => boolean;
  hand: Hand;
  serves: (gateway: string) => string | undefined;
  /** Gateways connected to this controller now. */
  connected: () => string[];
  onSettled?: (device: string, id: number, state: "acked" | "lost" | "waiting" | "expired") => void;
};

export class Cluster {
  readonly timing: ClusterTiming;
  readonly outbox: Outbox;
  readonly readings: Readings;
  readonly commands: CommandBook;
  readonly dispatch: CommandDispatch;
  readonly routes: RouteBook;
  readonly leases: GatewayLeases;
  /** Devices heard within ten minutes, cluster-wide (refreshed by the sweep). */
  online = 0;
  private timer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private sweeps = 0;

  constructor(private readonly o: ClusterOptions) {
    const t = (this.timing = { ...DEFAULT_TIMING, ...o.timing });
    this.outbox = new Outbox(o.db, o.me, t.leaseMs);
    // A device's new route is written before its reading is acknowledged: once a board saw its reading
    // acknowledged, a controller that dies loses no route (commands find the device after any restart).
    this.readings = new Readings({
      outbox: this.outbox, publish: o.publish, canPublish: o.canPublish, log: o.log, dedupWindowMs: t.dedupWindowMs, beforeAck: () => this.flushRoutes(),
      leaseMs: t.leaseMs,
    });
    this.commands = new CommandBook(o.db);
    this.routes = new RouteBook(o.db, o.me, t.routeRefreshMs);
    this.leases = new GatewayLeases(o.db, o.me, t.leaseMs);
    this.dispatch = new CommandDispatch({ db: o.db, book: this.commands, routes: this.routes, hand: o.hand, serves: o.serves, onSettled: o.onSettled, log: o.log });
  }

  async start(): Promise<void> {
    // Alive before it claims anything: rows it inserts are its own from the first.
    await this.outbox.beat();
    await this.readings.beat();
    // Apart from the sweep, which may wait on the database behind other work: a late heartbeat costs claims.
    this.beatTimer = setInterval(() => void this.readings.beat(), Math.max(50, this.timing.leaseMs / 4));
    await this.dispatch.start();
    this.timer = setInterval(() => (this.sweeping ??= this.sweep().finally(() => (this.sweeping = undefined))), this.timing.sweepMs);
  }

  /** Stores what waits and stops the timer; call once the broker connection is stopped. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.beatTimer);
    await this.sweeping;
    await this.readings.stop();
    await this.dispatch.run(() => this.flushRoutes());
    await this.dispatch.stop();
  }

  /** Figures for /status: devices online, readings stored, copies recognised, rows taken over, commands. */
  status(): Record<string, number> {
    const r = this.readings.stats, d = this.dispatch.stats;
    return {
      online: this.online, stored: r.stored, duplicates: r.duplicates, published: r.published, takenOver: r.takenOver, claimed: r.claimed, lostClaims: r.lostClaims, alreadyPublished: r.alreadyPublished,
      storeFailures: r.failures, commandsHanded: d.handed, commandsSettled: d.settled, commandsNotified: d.notified,
    };
  }

  /** A reading from `device` through `h`; `durable` once stored. */
  reading(r: Reading, h: Heard, durable: () => void): void {
    this.routes.heard(r.device, h, Date.now());
    this.readings.add(r, durable);
  }

  /** Writes due routes; the devices that moved get their commands handed again (not waited for). Throws when the write fails. */
  async flushRoutes(): Promise<void> {
    const moved = await this.routes.flush(Date.now());
    if (moved.length > 0) void this.dispatch.run(() => this.dispatch.moved(moved));
  }

  private async sweep(): Promise<void> {
    const n = this.sweeps++;
    await this.dispatch.run(() => this.flushRoutes());
    await this.readings.sweep();
    await this.dispatch.run(async () => {
      const gws = this.o.connected();
      await this.leases.renew(gws);
      if (n % 5 === 0) await this.dispatch.sweep(gws);
      if (n % 10 === 0) this.online = await this.routes.online(600_000);
      if (n % 30 === 0) {
        for (const c of await this.commands.expire(this.timing.commandTtlMs)) this.o.onSettled?.(c.device, c.id, "expired");
        await this.commands.prune(7 * 86_400_000, 10_000);
      }
    });
  }
}
