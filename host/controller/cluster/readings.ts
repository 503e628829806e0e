// Readings from the backbone (and the controller's own relay sessions) to MQTT through the outbox
// (./outbox.ts), exactly once whichever controller sees them and however often:
//
//   add()    readings wait for the next turn of the event loop and go in as one INSERT (one statement per
//            batch, not per reading); when it commits, each reading's `durable` is called (the gateway's
//            acknowledgement, a relayed device's ACK), copies included: a copy is acknowledged, never
//            published. A batch that fails is tried again a second later, with what came meanwhile.
//   publish  the rows this controller inserted go to the broker under its claim, at most `window` at a time
//            (the rest wait here, and past `maxWaiting` are released: the database is the queue, not this
//            process's memory, and the acknowledgements no longer wait for the broker); their PUBACKs mark
//            them published (batched likewise). One the broker did not take is released for any controller.
//   beat()   every quarter lease, on its own timer: this controller's heartbeat, which keeps all its claims.
//            Rows go to the broker only while the last heartbeat that committed is younger than two thirds of
//            the lease (by this process's clock, from when it was sent): past that, another controller may
//            take them over (by the database's clock, a whole lease after it). A heartbeat that commits after
//            the previous one's lease ran out (the database was down, or this process stalled) keeps only the
//            rows still claimed here: the others went to another controller, which publishes them.
//   sweep()  every second: take over rows no live controller holds (one died, or released them), while the
//            broker is reachable and the claims held (another's only once they held a whole lease: after a
//            database outage every heartbeat is stale, and the live ones need a lease to beat again and mark
//            what their broker took meanwhile); prune published rows older than the dedup window
//            (every 30 s, or every second while there are many).
//
// A controller that dies (or stalls past its lease) has rows the broker took but it never marked: its PUBACK
// or its mark was still on the way. So the controllers of a cluster watch one another's readings at the broker
// (Delivery's onOthersReading: an MQTT 5 no-local subscription) for a while, and a row taken over from another
// that the broker already has is marked published, not published again. A reading may still reach MQTT twice
// when that watch missed it (QoS 0, or the taker was not connected yet when the other published it).
import { LimitedWarnings, type Logger } from "../../telemetry/log";
import type { Outbox, Reading, ReadingKey } from "./outbox";

export type ReadingsOptions = {
  outbox: Outbox;
  /** Hands a reading to the broker: `done(true)` on its PUBACK, `done(false)` when it was dropped or failed. */
  publish: (r: Reading, done: (ok: boolean) => void) => void;
  /** Whether publishing can work now (the broker is connected): rows are taken over only then. */
  canPublish: () => boolean;
  log: Logger;
  /** Published rows are kept this long (ms) so a late copy is still recognised. */
  dedupWindowMs: number;
  /** Readings per INSERT at most (default 2,000). */
  batchMax?: number;
  /** Rows handed to the broker and not yet acknowledged by it, at most (default 2,000). */
  window?: number;
  /** Rows claimed here waiting for the window, at most: older ones are released (default 20,000). */
  maxWaiting?: number;
  /** Retry delay for a failed statement (default 1 s). */
  retryMs?: number;
  /** Runs after a batch is stored and before it is acknowledged (the routes its readings changed are written). */
  beforeAck?: () => Promise<void>;
  /** How long this controller's claims last after a heartbeat (the outbox's lease, ms). */
  leaseMs: number;
};

export type ReadingsStats = {
  /** New readings stored, copies recognised (not published again), readings published. */
  stored: number; duplicates: number; published: number;
  /** Rows claimed in a sweep: from another controller (it died or stopped renewing), and in all. */
  takenOver: number; claimed: number;
  /** Rows claimed here that another controller took over while this one's heartbeat lapsed (it publishes them). */
  lostClaims: number;
  /** Rows taken over from another controller that the broker had already (seen published): marked, not sent again. */
  alreadyPublished: number;
  /** Rows this controller could not publish and released; statements that failed; rows pruned. */
  released: number; failures: number; pruned: number; batches: number;
};

type Waiting = { r: Reading; durable: () => void };

/** Published rows deleted per statement. */
const PRUNE_BATCH = 10_000;

export class Readings {
  readonly stats: ReadingsStats = { stored: 0, duplicates: 0, published: 0, takenOver: 0, claimed: 0, lostClaims: 0, alreadyPublished: 0, released: 0, failures: 0, pruned: 0, batches: 0 };
  private waiting: Waiting[] = [];
  private storing: Promise<void> | undefined;
  private marks: ReadingKey[] = [];
  private releases: ReadingKey[] = [];
  private marking: Promise<void> | undefined;
  /** Rows handed to the broker and not settled yet; rows claimed here waiting for room among them. */
  private inHand = 0;
  private queued: Reading[] = [];
  private queuedHead = 0;
  private pumping = false;
  /** The last prune found a full batch: prune again next sweep. */
  private pruneMore = false;
  private sweeps = 0;
  private stopped = false;
  /** Local time until which this controller's claims hold (its last committed heartbeat's send time + lease). */
  private claimsUntil = 0;
  /** A heartbeat committed after the previous lease ran out: the rows waiting here are checked before they go. */
  private lapsed = false;
  /** Since when the claims held without a lapse (local time): another's claims are taken only a lease after. */
  private holdingSince = Date.now();
  private beating: Promise<void> | undefined;
  /** Readings other controllers published, as the broker had them ("device/id" -> when seen), for a while. */
  private readonly others = new Map<string, number>();
  private readonly warnings: LimitedWarnings;

  constructor(private readonly opts: ReadingsOptions) {
    this.warnings = new LimitedWarnings(opts.log);
  }

  /** Rows claimed here and not yet published or released. */
  get held(): number {
    return this.inHand + this.queued.length - this.queuedHead;
  }

  /** Another controller published this reading (the broker has it): taken over, it is marked, not sent again. */
  publishedElsewhere(device: string, id: number): void {
    const now = Date.now(), keep = Math.max(30_000, 10 * this.opts.leaseMs);
    this.others.delete(`${device}/${id}`);
    this.others.set(`${device}/${id}`, now);
    // Oldest first (insertion order): forgotten once older than the longest a takeover comes after a death,
    // and at most 200,000 kept.
    for (const [k, at] of this.others) {
      if (now - at < keep && this.others.size <= 200_000) break;
      this.others.delete(k);
    }
  }

  /** A reading; `durable` once it is stored (or found stored already). */
  add(r: Reading, durable: () => void): void {
    this.waiting.push({ r, durable });
    if (this.storing === undefined) this.storing = this.store();
  }

  /** The heartbeat: renews every claim held here (one statement), then hands out what waited for it. Never throws. */
  beat(): Promise<void> {
    this.beating ??= this.renew().finally(() => (this.beating = undefined));
    return this.beating;
  }

  private async renew(): Promise<void> {
    const sent = Date.now();
    try {
      await this.opts.outbox.beat();
    } catch (e) {
      return this.failed("the outbox heartbeat failed", e);
    }
    if (Date.now() >= this.claimsUntil) this.lapsed = true;
    this.claimsUntil = sent + this.opts.leaseMs;
    if (this.lapsed) {
      try {
        await this.keepStillClaimed();
        this.lapsed = false;
        this.holdingSince = Date.now();
      } catch (e) {
        return this.failed("checking the claims held here failed", e);
      }
    }
    this.pump();
  }

  /** Whether rows claimed here may go to the broker now: the claims hold for another third of the lease at least. */
  private holding(): boolean {
    return !this.lapsed && Date.now() < this.claimsUntil - this.opts.leaseMs / 3;
  }

  /** After a lapse: the rows waiting here that another controller took over meanwhile are its to publish. */
  private async keepStillClaimed(): Promise<void> {
    const key = (r: { device: string; id: number }) => `${r.device}/${r.id}`;
    const checked = this.queued.slice(this.queuedHead);
    if (checked.length === 0) return;
    const still = new Set((await this.opts.outbox.stillClaimed(checked)).map(key));
    const asked = new Set(checked.map(key));
    // What came in while the check ran was claimed after the heartbeat committed: a live claim. What left the
    // queue meanwhile (released) stays gone.
    const before = this.held;
    this.queued = this.queued.slice(this.queuedHead).filter((r) => !asked.has(key(r)) || still.has(key(r)));
    this.queuedHead = 0;
    const lost = before - this.held;
    this.stats.lostClaims += lost;
    if (lost > 0) this.opts.log.warn("rows claimed here were taken over while the heartbeat lapsed (the taker publishes them)", { rows: lost });
  }

  /** Takes over rows whose claim ran out, prunes now and then. Never throws. */
  async sweep(): Promise<void> {
    const { outbox } = this.opts;
    try {
      const room = (this.opts.window ?? 2000) - this.held;
      if (!this.stopped && room > 0 && this.opts.canPublish() && this.holding()) {
        // After a lapse of its own (the database was away for every controller), another controller's claims
        // are left a whole lease: time for it to beat again and mark what its broker took meanwhile.
        const t = await outbox.takeOver(room, Date.now() - this.holdingSince >= this.opts.leaseMs);
        this.stats.claimed += t.rows.length;
        this.stats.takenOver += t.fromOthers;
        if (t.fromOthers > 0) this.opts.log.info("took over readings another controller had not published", { rows: t.fromOthers });
        t.rows.forEach((r, i) => {
          if (!t.others[i] || !this.others.has(`${r.device}/${r.id}`)) return this.publish(r);
          this.stats.alreadyPublished++;
          this.record(r, true);
        });
        this.pump();
      }
      if (this.sweeps++ % 30 === 0 || this.pruneMore) {
        const n = await outbox.prune(this.opts.dedupWindowMs, PRUNE_BATCH);
        this.stats.pruned += n;
        this.pruneMore = n === PRUNE_BATCH;
        if (this.sweeps % 3600 === 1) await outbox.forgetDead(86_400_000);
      }
    } catch (e) {
      this.failed("the outbox sweep failed", e);
    }
  }

  /** Stores what waits and settles the marks; call after the broker connection was stopped. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.storing !== undefined) await this.storing;
    // What never reached the broker is released, so another controller takes it at once.
    while (this.queuedHead < this.queued.length) this.settle(this.queued[this.queuedHead++], false);
    while (this.marking !== undefined) await this.marking;
  }

  private async store(): Promise<void> {
    // Whatever else arrives in this turn of the event loop joins the batch.
    await new Promise((r) => setImmediate(r));
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.opts.batchMax ?? 2000);
      let fresh: boolean[];
      try {
        fresh = await this.opts.outbox.insert(batch.map((w) => w.r));
      } catch (e) {
        this.failed("storing readings failed; trying again", e, { readings: batch.length });
        this.waiting.unshift(...batch);
        if (this.stopped) break;
        await new Promise((r) => setTimeout(r, this.opts.retryMs ?? 1000));
        continue;
      }
      this.stats.batches++;
      await this.opts.beforeAck?.().catch((e) => this.failed("writing routes failed", e));
      for (let i = 0; i < batch.length; i++) {
        batch[i].durable();
        if (fresh[i]) {
          this.stats.stored++;
          this.publish(batch[i].r);
        } else this.stats.duplicates++;
      }
      this.pump();
    }
    this.storing = undefined;
  }

  /** A row claimed here, to the broker when the window has room. */
  private publish(r: Reading): void {
    this.queued.push(r);
    const max = this.opts.maxWaiting ?? 20_000;
    if (this.queued.length - this.queuedHead > max) this.settle(this.queued[this.queuedHead++], false);
  }

  private pump(): void {
    // One loop at a time: a publish that fails at once calls back inside it, and the loop goes on.
    if (this.pumping || this.stopped || !this.holding()) return;
    this.pumping = true;
    const window = this.opts.window ?? 2000;
    while (this.inHand < window && this.queuedHead < this.queued.length) {
      const r = this.queued[this.queuedHead++];
      this.inHand++;
      this.opts.publish(r, (ok) => {
        this.inHand--;
        this.settle(r, ok);
        this.pump();
      });
    }
    this.pumping = false;
    if (this.queuedHead === this.queued.length) {
      this.queued = [];
      this.queuedHead = 0;
    } else if (this.queuedHead > 4096 && this.queuedHead * 2 > this.queued.length) {
      this.queued = this.queued.slice(this.queuedHead);
      this.queuedHead = 0;
    }
  }

  /** Published (marked), or not (released: any controller, this one too, takes it again in a sweep). */
  private settle(r: Reading, ok: boolean): void {
    if (ok) this.stats.published++;
    else this.stats.released++;
    this.record(r, ok);
  }

  /** Marks a row published, or releases it, in the next batch of marks. */
  private record(r: Reading, published: boolean): void {
    (published ? this.marks : this.releases).push({ device: r.device, id: r.id });
    if (this.marking === undefined) this.marking = this.mark();
  }

  private async mark(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    while (this.marks.length > 0 || this.releases.length > 0) {
      const marks = this.marks.splice(0), releases = this.releases.splice(0);
      try {
        await this.opts.outbox.published(marks);
        marks.length = 0;
        await this.opts.outbox.release(releases);
      } catch (e) {
        // Tried again: a row left claimed here would stay claimed while this controller lives, never published.
        // (Stopping, they are left: the claims run out and another controller publishes them, once more for the marks.)
        this.failed("marking readings published failed; trying again", e, { readings: marks.length + releases.length });
        if (this.stopped) break;
        this.marks.unshift(...marks);
        this.releases.unshift(...releases);
        await new Promise((r) => setTimeout(r, this.opts.retryMs ?? 1000));
      }
    }
    this.marking = undefined;
  }

  private failed(msg: string, e: unknown, fields: Record<string, unknown> = {}): void {
    this.stats.failures++;
    this.warnings.warn(msg, { ...fields, error: e instanceof Error ? e.message : String(e) });
  }
}
