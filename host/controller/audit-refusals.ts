// Refused admin calls go to the audit log without letting a flood grow it without bound. Time is cut into
// windows (a minute by default); in each, a source (the token id of an authenticated caller, otherwise its
// address) has its first `rowsPerSource` refusals written as rows of their own, and the rest counted and
// written as one summary row per source and outcome when the window ends (or the API closes). At most
// `sources` sources are tracked by name per window; refusals from any further source are counted in one
// summary per outcome for all of them. So a window adds at most
//
//     sources x (rowsPerSource + outcomes) + outcomes    rows of refusals
//
// however many requests arrive from however many addresses, and every refused call is in a row or in a
// summary's count. Counts not yet written are held in memory: a summary that cannot be written is merged
// into the next window's, and a kill -9 loses at most the current window's counts (its first rows per
// source are written already).
import type { AuditEntry, AuditLog, AuditOutcome } from "./audit";

export type RefusalLimits = { windowMs: number; rowsPerSource: number; sources: number };

export const DEFAULT_REFUSAL_LIMITS: RefusalLimits = { windowMs: 60_000, rowsPerSource: 10, sources: 100 };

/** The action of a summary row. */
export const SUMMARY_ACTION = "refusals.summary";

/** Distinct actions (attacker-chosen paths among them) a summary names before it lumps the rest as "other". */
const MAX_ACTIONS = 10;
/** Distinct addresses counted in the summary of untracked sources; past it the count says "at least". */
const MAX_OTHER_ADDRESSES = 10_000;

type Tally = { count: number; statuses: Record<string, number>; actions: Record<string, number> };

type SourceState = { actor: string | null; remote: string | null; rows: number; tallies: Map<AuditOutcome, Tally> };

type Window = { start: number; sources: Map<string, SourceState>; other: Map<AuditOutcome, Tally>; otherAddresses: Set<string> };

export type RefusalAuditOptions = {
  limits?: RefusalLimits;
  now?: () => number;
  /** Told of each summary written, and of a failed write (the counts are kept for the next window). */
  log?: (level: "warn" | "error", msg: string, fields: Record<string, unknown>) => void;
};

export class RefusalAudit {
  private window: Window;
  private readonly timer: NodeJS.Timeout;
  private readonly limits: RefusalLimits;
  private readonly now: () => number;
  private readonly log: NonNullable<RefusalAuditOptions["log"]>;

  constructor(
    private readonly audit: AuditLog,
    opts: RefusalAuditOptions = {},
  ) {
    this.limits = opts.limits ?? DEFAULT_REFUSAL_LIMITS;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => {});
    this.window = this.newWindow();
    // Quiet periods end windows too: a flood that stops still gets its summary within a window or so.
    this.timer = setInterval(() => this.flushSoon(), this.limits.windowMs);
    this.timer.unref();
  }

  /**
   * Records one refused call from `source` (the caller's token id, or its address when it has none): a row
   * of its own while the source is within its rows for this window (awaited: the caller learns if it failed),
   * otherwise a count. Returns which, so the caller logs only what got a row (summaries are logged).
   */
  async record(source: string, e: AuditEntry): Promise<"row" | "counted"> {
    if (this.now() >= this.window.start + this.limits.windowMs) this.flushSoon();
    const w = this.window;
    const key = `${e.actor === null ? "address" : "token"} ${source}`;
    let s = w.sources.get(key);
    if (s === undefined && w.sources.size < this.limits.sources) {
      s = { actor: e.actor, remote: e.actor === null ? source : null, rows: 0, tallies: new Map() };
      w.sources.set(key, s);
    }
    if (s !== undefined && s.rows < this.limits.rowsPerSource) {
      s.rows++;
      await this.audit.append(e);
      return "row";
    }
    const status = String(e.detail?.status ?? "");
    if (s !== undefined) count(s.tallies, e.outcome, status, e.action, 1);
    else {
      count(w.other, e.outcome, status, e.action, 1);
      if (w.otherAddresses.size < MAX_OTHER_ADDRESSES) w.otherAddresses.add(source);
    }
    return "counted";
  }

  /** Writes the summaries of the window if it has ended, or now whatever its age (`all`, when the API closes). */
  async flush(all: boolean): Promise<void> {
    const w = this.window;
    const end = this.now();
    if (!all && end < w.start + this.limits.windowMs) return;
    this.window = this.newWindow();
    const rows: AuditEntry[] = [];
    const period = { from: new Date(w.start).toISOString(), to: new Date(end).toISOString() };
    for (const s of w.sources.values()) {
      for (const [outcome, t] of s.tallies) {
        rows.push({ actor: s.actor, action: SUMMARY_ACTION, outcome, detail: { ...(s.remote === null ? {} : { remote: s.remote }), ...t, ...period } });
      }
    }
    for (const [outcome, t] of w.other) {
      const addresses = w.otherAddresses.size >= MAX_OTHER_ADDRESSES ? `${MAX_OTHER_ADDRESSES}+` : w.otherAddresses.size;
      rows.push({ actor: null, action: SUMMARY_ACTION, outcome, detail: { remote: "other", addresses, ...t, ...period } });
    }
    for (let i = 0; i < rows.length; i++) {
      try {
        await this.audit.append(rows[i]);
      } catch (e) {
        // Not lost: the counts go back into the window now open, to be written with its summaries.
        for (const r of rows.slice(i)) this.requeue(r);
        throw e;
      }
      const { actor, outcome, detail } = rows[i];
      this.log("warn", "admin calls refused (summary)", { actor, outcome, remote: detail!.remote, count: detail!.count, statuses: detail!.statuses });
    }
  }

  private flushSoon(): void {
    this.flush(false).catch((e) => this.log("error", "audit summary write failed; counts kept for the next window", { error: String(e) }));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private requeue(r: AuditEntry): void {
    const t = r.detail as unknown as Tally;
    const tallies = this.window.other;
    for (const [status, n] of Object.entries(t.statuses)) count(tallies, r.outcome, status, undefined, n);
    const mine = tallies.get(r.outcome)!;
    for (const [action, n] of Object.entries(t.actions)) addAction(mine, action, n);
  }

  private newWindow(): Window {
    return { start: this.now(), sources: new Map(), other: new Map(), otherAddresses: new Set() };
  }
}

function count(tallies: Map<AuditOutcome, Tally>, outcome: AuditOutcome, status: string, action: string | undefined, n: number): void {
  let t = tallies.get(outcome);
  if (t === undefined) tallies.set(outcome, (t = { count: 0, statuses: {}, actions: {} }));
  t.count += n;
  t.statuses[status] = (t.statuses[status] ?? 0) + n;
  if (action !== undefined) addAction(t, action, n);
}

function addAction(t: Tally, action: string, n: number): void {
  const key = Object.hasOwn(t.actions, action) || Object.keys(t.actions).length < MAX_ACTIONS ? action : "other";
  t.actions[key] = (t.actions[key] ?? 0) + n;
}
