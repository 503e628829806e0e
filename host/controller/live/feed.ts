// What the fleet looks like now, and what just happened to it, for the admin API's fleet routes and its
// event stream (the web console's live view). Fed by the controller (readings, commands, sessions, registry
// changes) and read from what it already keeps: the registry and the session log (database), where each
// device was last heard (./device-status.ts). Per device it remembers a little more, in bounded memory:
// the last readings, the last commands and what became of them, and the reading ids never received.
//
// The fleet table's changes are computed once per tick for all streams (registry and open sessions re-read
// when they changed, or every few seconds for writers elsewhere), and only rows that changed go out. The
// registry is read whole only now and then, in between only the rows changed since (../registry-changes.ts),
// so a console open on a large fleet does not read every device each time. A tick makes the rows of the
// devices something happened to (a reading, a command, a session, a registry change) and a tenth of the
// others in turn, for what changes with time alone (online, readings per minute) or is not told here (radio
// signal): making and comparing every row each tick took 312-541 ms a second at 100,000 devices.
import type { DeviceStatusBook } from "../device-status";
import { ONLINE_WINDOW_MS } from "../device-status";
import { sees, type Principal } from "../principal";
import type { DeviceRecord } from "../registry";
import { RegistryChanges } from "../registry-changes";
import type { SessionRecord } from "../sessions";
import type { ControllerStore } from "../store";
import type { GatewayQueues, SignalRow } from "./reports";
import { FleetNumbers, type FleetSummary } from "./fleet-numbers";
import { EventStreams, type Stream } from "./streams";

/** The rows of the fleet table shown: those matching `q` (in the name or the id, any case), from the `from`th (0 first), `size` at most. */
export type FleetView = { q: string; from: number; size: number };
/** The rows a stream shows unless it asks for others, and the most a view may ask for. */
export const FLEET_PAGE = 100;
export const FLEET_PAGE_MAX = 1000;


export type Fleet = { summary: FleetSummary; total: number; from: number; devices: FleetRow[]; gateways: GatewayRow[]; queues: Record<string, number> };

export type CommandState = "sent" | "acked" | "lost" | "rejected";

export type FleetRow = {
  id: string; name: string; board: string; mode: string; generation: number; revoked: boolean;
  online: boolean; lastSeen: string | null; gateway: string | null; link: string | null; perMinute: number;
  /** The open session: its SPI, the gateway holding it, when it opened. */
  session: { spi: number; gateway: string; openedAt: string } | null;
  commands: Record<CommandState, number>;
  /** Reading ids never received (a gap in the device's numbering). */
  missing: number;
  /** Its radio signal as its gateway last reported it (./reports.ts), when known. */
  signal: SignalRow | null;
};

export type Reading = { id: number; at: string; bytes: number; gateway: string; payload: string };
export type CommandEntry = { id: number | null; at: string; bytes: number; state: CommandState; reason?: string };

export type GatewayRow = {
  kid: string; mode: string; connected: boolean;
  /** Messages to it not yet acknowledged by it; messages from it not yet durable here. */
  queueToGateway: number; awaitingDurable: number;
  /** Messages received from it (this run of the controller) and readings among them. */
  received: number; readings: number;
  /** The gateway's own queues as it last reported them (GATEWAY_STATUS), when it has reported here. */
  reported: GatewayQueues | null;
};

export type FeedSources = {
  store: ControllerStore;
  status: DeviceStatusBook;
  gateways: () => Omit<GatewayRow, "readings">[];
  /** A device's radio signal, when a gateway reported it. */
  signal?: (device: string) => SignalRow | null;
  /** Controller-wide queues (name -> messages), e.g. MQTT delivery. */
  queues: () => Record<string, number>;
  now?: () => number;
};

/** Kept per device, for at most 20,000 devices (the one first seen is forgotten first): the last readings and commands, ids never received. */
const KEEP_READINGS = 10;
const KEEP_COMMANDS = 20;
const KEEP_MISSING = 64;
/** Bytes of a reading's payload shown. */
const PAYLOAD_SHOWN = 64;
/** How often the fleet table is recomputed while a stream is open, and re-read from the database at least. */
const TICK_MS = 1000;
const REREAD_MS = 5000;
/** Every device's row is made again at least once in this many ticks, whether or not it was told of a change. */
const SWEEP_TICKS = 10;

/** As kept: formatted (Reading) only when someone looks, so a reading costs the controller little. */
type RawReading = { id: number; at: number; gateway: string; bytes: number; payload: Uint8Array };

type Recent = { readings: RawReading[]; commands: CommandEntry[]; top: number; missing: number[]; counts: Record<CommandState, number> };

export class LiveFeed {
  readonly streams: EventStreams;
  private readonly recent = new Map<string, Recent>();
  /** Readings carried per gateway (this run). */
  private readonly perGateway = new Map<string, number>();
  private readonly now: () => number;
  /** The registry as last read, in its order (created first, first). */
  private devices = new Map<string, DeviceRecord>();
  private readonly changes: RegistryChanges;
  private open = new Map<string, SessionRecord>();
  private readAt = { devices: -Infinity, sessions: -Infinity };
  /** Each device's row as last sent (JSON), the devices to make again at the next tick, and the sweep's place. */
  private readonly rows = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private sweepIds: string[] = [];
  private sweepAt = 0;
  private sweepStale = true;
  /** The open sessions were read before (the first read changes no row a stream was sent: it has the fleet). */
  private sessionsRead = false;
  private lastGateways = "";
  /** Sessions or the registry changed: streams following one device get its detail again at the next tick. */
  private watchedDirty = false;
  private rereading: Promise<void> | undefined;
  /** Each stream's window: the ids of its rows, how many match its search, the summary it was last sent. */
  private readonly windows = new WeakMap<Stream, { ids: string[]; shown: Set<string>; total: number; said: string }>();
  /** The registry changed since the windows were placed: a window's rows may be others now. */
  private windowsStale = false;
  /** The fleet in numbers, kept as the rows are made: as current as the rows (the devices told of at once, the others within a sweep). */
  private readonly numbers = new FleetNumbers();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly src: FeedSources, streams = new EventStreams(), private readonly maxDevices = 20_000) {
    this.now = src.now ?? Date.now;
    this.changes = new RegistryChanges(src.store.registry, true, this.now);
    this.streams = streams;
    this.timer = setInterval(() => void this.tick().catch(() => {}), TICK_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.streams.closeAll();
  }

  // ---- what the controller tells it ----

  /** A reading was taken in; `payload` is kept (the first 64 bytes of it), so it must not change after. */
  reading(device: string, id: number, payload: Uint8Array, gateway: string, at: number): void {
    this.perGateway.set(gateway, (this.perGateway.get(gateway) ?? 0) + 1);
    const r = this.of(device);
    const raw: RawReading = { id, at, gateway, bytes: payload.length, payload: payload.length <= PAYLOAD_SHOWN ? payload : payload.subarray(0, PAYLOAD_SHOWN) };
    push(r.readings, raw, KEEP_READINGS);
    this.numbered(r, id);
    this.touched(device);
    if (this.streams.follows(device)) this.streams.send(watching(device), "reading", { device, ...formatted(raw), missing: r.missing });
  }

  /** A command was taken (`id`: its number for the device, from the database), or refused (`id` null). */
  command(device: string, state: "sent" | "rejected", id: number | null, bytes: number, reason?: string): void {
    const r = this.of(device);
    const entry: CommandEntry = { id, at: new Date(this.now()).toISOString(), bytes, state };
    if (reason !== undefined) entry.reason = reason;
    push(r.commands, entry, KEEP_COMMANDS);
    r.counts[state]++;
    this.touched(device);
    this.streams.send(watching(device), "command", { device, ...entry });
  }

  /** What became of a sent command, by its id: "acked" and "lost" are its end (the controller reports only those). */
  commandState(device: string, id: number, state: "acked" | "lost"): void {
    const r = this.recent.get(device);
    const entry = r?.commands.find((c) => c.state === "sent" && c.id === id);
    if (r === undefined || entry === undefined) return;
    r.counts.sent--;
    entry.state = state;
    r.counts[state]++;
    this.touched(device);
    this.streams.send(watching(device), "command", { device, ...entry });
  }

  /** A session row was written (opened or closed) by the session recorder, or a registry change closed some. */
  sessionChanged(e: { event: string; device?: string; gateway: string; spi?: number; reason?: string }): void {
    this.readAt.sessions = -Infinity;
    this.watchedDirty = true;
    this.streams.send((s) => e.device === undefined || sees(s.principal, e.device), "session", e);
  }

  registryChanged(device: string, change: "provisioned" | "rotated" | "revoked"): void {
    this.readAt.devices = this.readAt.sessions = -Infinity;
    this.watchedDirty = true;
    this.streams.send((s) => sees(s.principal, device), "registry", { device, change });
  }

  // ---- what the routes read ----

  /** The fleet as `p` may see it: the rows of `view` (every row without one), and the whole of it in numbers. */
  async fleet(p: Principal, view?: FleetView): Promise<Fleet> {
    await this.refresh();
    return this.fleetNow(p, view, this.matching(p, view?.q ?? ""));
  }

  /** One device in detail, or undefined if the registry does not know it. */
  async device(id: string): Promise<{ device: FleetRow; sessions: SessionRecord[]; readings: Reading[]; commands: CommandEntry[]; missing: number[] } | undefined> {
    const d = await this.src.store.registry.get(id);
    if (d === undefined) return undefined;
    const sessions = await this.src.store.sessions.list({ deviceId: id, limit: 20 });
    const open = sessions.find((s) => s.closedAt === null);
    const r = this.recent.get(id);
    return {
      device: this.row(d, open, this.now()), sessions,
      readings: r?.readings.map(formatted).reverse() ?? [], commands: r?.commands.slice().reverse() ?? [], missing: r?.missing.slice() ?? [],
    };
  }

  /** Starts a stream: its first event is its window of the fleet. */
  async startStream(p: Principal, device: string | undefined, res: import("node:http").ServerResponse, view: FleetView): Promise<void> {
    const first = await this.fleet(p, view);
    const opening: [string, unknown][] = [["fleet", first]];
    if (device !== undefined) {
      const d = await this.device(device);
      if (d !== undefined) opening.push(["device", d]);
    }
    const s = this.streams.start(p, { device, view }, res, opening);
    const ids = first.devices.map((r) => r.id);
    this.windows.set(s, { ids, shown: new Set(ids), total: first.total, said: JSON.stringify({ summary: first.summary, total: first.total }) });
  }

  // ---- internals ----

  private async tick(): Promise<void> {
    if (this.streams.size === 0) return;
    await this.refresh();
    const now = this.now();
    const ids = [...this.dirty];
    this.dirty.clear();
    if (this.sweepStale) {
      this.sweepIds = [...this.devices.keys()];
      this.sweepStale = false;
    }
    const sweep = this.sweepIds;
    for (let k = Math.ceil(sweep.length / SWEEP_TICKS); k > 0; k--) {
      if (this.sweepAt >= sweep.length) this.sweepAt = 0;
      ids.push(sweep[this.sweepAt++]);
    }
    if (!this.numbers.current(now, 2 * TICK_MS)) this.allNumbers(now);
    const changed: FleetRow[] = [];
    for (const id of ids) {
      const d = this.devices.get(id);
      if (d === undefined) continue;
      const row = this.row(d, this.open.get(id), now);
      this.numbers.set(id, row.revoked, row.perMinute, row.online, row.session !== null);
      const text = JSON.stringify(row);
      if (this.rows.get(id) === text) continue;
      this.rows.set(id, text);
      changed.push(row);
    }
    if (this.windowsStale) {
      this.windowsStale = false;
      this.streams.each("fleet", (s) => this.placed(s));
    }
    if (changed.length > 0) this.streams.each("devices", (s) => nonEmpty(changed.filter((r) => this.shows(s, r.id))));
    this.numbers.kept(now);
    const summaries = new Map<string, FleetSummary>();
    this.streams.each("summary", (s) => this.summaryFor(s, now, summaries));
    const gateways = JSON.stringify({ gateways: this.gateways(), queues: this.src.queues() });
    if (gateways !== this.lastGateways) {
      this.lastGateways = gateways;
      this.streams.send(() => true, "gateways", JSON.parse(gateways));
    }
    if (this.watchedDirty) {
      this.watchedDirty = false;
      for (const id of this.streams.watched()) {
        const d = await this.device(id);
        if (d !== undefined) this.streams.send(watching(id), "device", d);
      }
    }
  }

  /** Re-reads the registry and the open sessions when they changed or are older than REREAD_MS (one read at a time). */
  private async refresh(): Promise<void> {
    while (this.rereading !== undefined) await this.rereading;
    const now = this.now();
    if (now - this.readAt.devices < REREAD_MS && now - this.readAt.sessions < REREAD_MS) return;
    this.rereading = (async () => {
      const { sessions } = this.src.store;
      if (now - this.readAt.devices >= REREAD_MS) {
        this.readAt.devices = now;
        await this.changes.read((rows, whole) => {
          if (whole) {
            // (What it holds that the changed-rows reads did not bring is rare: the sweep finds it.)
            this.devices = new Map(rows.map((d) => [d.id, d]));
            this.sweepStale = true;
            this.windowsStale = true;
            this.numbers.invalidate();
          } else {
            for (const d of rows) {
              const held = this.devices.get(d.id);
              this.devices.set(d.id, d); // a changed row replaces the one held, a new one goes last
              // A row read again (the reads look back a minute) shows nothing new: after a change to every
              // device, marking them all at each read made every row again every 5 s for a minute (100,000
              // devices: 480,100 rows made in 20 s against 200,100, the event loop held up to 449-523 ms against 120-157).
              if (held !== undefined && shownSame(held, d)) continue;
              if (held === undefined) this.sweepStale = true;
              this.dirty.add(d.id);
              this.windowsStale = true;
            }
          }
        });
      }
      if (now - this.readAt.sessions >= REREAD_MS) {
        this.readAt.sessions = now;
        const held = new Map<string, SessionRecord>();
        for (const s of this.open.values()) held.set(s.id, s);
        const open = new Map<string, SessionRecord>();
        for (const s of await sessions.listOpen(held)) if (!open.has(s.deviceId)) open.set(s.deviceId, s);
        if (this.sessionsRead) {
          for (const [device, s] of open) if (this.open.get(device) !== s) this.dirty.add(device);
          for (const device of this.open.keys()) if (!open.has(device)) this.dirty.add(device);
        }
        this.sessionsRead = true;
        this.open = open;
      }
    })().finally(() => (this.rereading = undefined));
    await this.rereading;
  }

  private gateways(): GatewayRow[] {
    return this.src.gateways().map((g) => ({ ...g, readings: this.perGateway.get(g.kid) ?? 0 }));
  }

  private fleetNow(p: Principal, view: FleetView | undefined, matching: string[]): Fleet {
    const now = this.now();
    const ids = view === undefined ? matching : matching.slice(view.from, view.from + view.size);
    const devices = ids.map((id) => this.row(this.devices.get(id)!, this.open.get(id), now));
    return { summary: this.summary(p, now), total: matching.length, from: view?.from ?? 0, devices, gateways: this.gateways(), queues: this.src.queues() };
  }

  /** The ids `p` sees whose id or name holds `q` (any case), in the registry's order. */
  private matching(p: Principal, q: string): string[] {
    const needle = q.toLowerCase();
    const out: string[] = [];
    for (const d of this.devices.values()) {
      if (!sees(p, d.id)) continue;
      if (needle !== "" && !d.id.includes(needle) && !d.name.toLowerCase().includes(needle)) continue;
      out.push(d.id);
    }
    return out;
  }

  private summary(p: Principal, now: number): FleetSummary {
    if (!this.numbers.current(now, 2 * TICK_MS)) this.allNumbers(now);
    return this.numbers.of(p);
  }

  /** Every device's part in the numbers found again, from where it was heard and its open session, without making its row. */
  private allNumbers(now: number): void {
    this.numbers.clear();
    for (const d of this.devices.values()) {
      const seen = this.src.status.get(d.id, now);
      const online = seen !== undefined && now - seen.at < ONLINE_WINDOW_MS;
      this.numbers.set(d.id, d.revokedAt !== null, seen?.perMinute ?? 0, online, this.open.has(d.id));
    }
    this.numbers.kept(now);
  }

  /** Whether a row goes to `s`: one in its window or the device it follows (a stream with no window: every row it sees). */
  private shows(s: Stream, id: string): boolean {
    const w = this.windows.get(s);
    return w === undefined ? sees(s.principal, id) : w.shown.has(id) || s.filter.device === id;
  }

  /** `s`'s window placed again after a registry change: the whole of it when its rows are others now (a device made, renamed, revoked away). */
  private placed(s: Stream): Fleet | undefined {
    const w = this.windows.get(s);
    const view = w === undefined ? undefined : s.filter.view;
    if (w === undefined || view === undefined) return undefined;
    const matching = this.matching(s.principal, view.q);
    w.total = matching.length;
    const ids = matching.slice(view.from, view.from + view.size);
    if (ids.length === w.ids.length && ids.every((id, i) => id === w.ids[i])) return undefined;
    const f = this.fleetNow(s.principal, view, matching);
    w.ids = ids;
    w.shown = new Set(ids);
    w.said = JSON.stringify({ summary: f.summary, total: f.total });
    return f;
  }

  /** The fleet in numbers for `s`, when they changed since it was last sent them (one count per credential a tick). */
  private summaryFor(s: Stream, now: number, made: Map<string, FleetSummary>): { summary: FleetSummary; total: number } | undefined {
    const w = this.windows.get(s);
    if (w === undefined) return undefined;
    let summary = made.get(s.principal.actor);
    if (summary === undefined) made.set(s.principal.actor, (summary = this.summary(s.principal, now)));
    const text = JSON.stringify({ summary, total: w.total });
    if (text === w.said) return undefined;
    w.said = text;
    return { summary, total: w.total };
  }

  private row(d: DeviceRecord, open: SessionRecord | undefined, now: number): FleetRow {
    const seen = this.src.status.get(d.id, now);
    const r = this.recent.get(d.id);
    return {
      id: d.id, name: d.name, board: d.board, mode: d.mode, generation: d.generation, revoked: d.revokedAt !== null,
      online: d.revokedAt === null && seen !== undefined && now - seen.at < ONLINE_WINDOW_MS,
      lastSeen: seen === undefined ? null : new Date(seen.at).toISOString(),
      gateway: seen?.gateway ?? null, link: seen?.link ?? null, perMinute: seen?.perMinute ?? 0,
      session: open === undefined ? null : { spi: open.spi, gateway: open.gateway, openedAt: open.openedAt },
      commands: r === undefined ? { sent: 0, acked: 0, lost: 0, rejected: 0 } : { ...r.counts },
      missing: r?.missing.length ?? 0, signal: this.src.signal?.(d.id) ?? null,
    };
  }

  /** Something happened to `device`: its row is made again at the next tick (while nobody watches, a stream opened later has the fleet). */
  private touched(device: string): void {
    if (this.streams.size > 0) this.dirty.add(device);
  }

  private of(device: string): Recent {
    let r = this.recent.get(device);
    if (r === undefined) {
      if (this.recent.size >= this.maxDevices) this.recent.delete(this.recent.keys().next().value as string);
      r = { readings: [], commands: [], top: -1, missing: [], counts: { sent: 0, acked: 0, lost: 0, rejected: 0 } };
      this.recent.set(device, r);
    }
    return r;
  }

  /** Keeps the ids skipped between the highest seen and `id`; one that arrives late leaves the list. */
  private numbered(r: Recent, id: number): void {
    const i = r.missing.indexOf(id);
    if (i >= 0) r.missing.splice(i, 1);
    if (r.top >= 0 && id > r.top + 1) {
      for (let k = Math.max(r.top + 1, id - KEEP_MISSING); k < id; k++) r.missing.push(k);
      if (r.missing.length > KEEP_MISSING) r.missing.splice(0, r.missing.length - KEEP_MISSING);
    }
    if (id > r.top) r.top = id;
  }
}

/** Whether two reads of a device's registry row make the same fleet row. */
const shownSame = (a: DeviceRecord, b: DeviceRecord) =>
  a.name === b.name && a.board === b.board && a.mode === b.mode && a.generation === b.generation && a.revokedAt === b.revokedAt;

const formatted = (r: RawReading): Reading => ({
  id: r.id, at: new Date(r.at).toISOString(), bytes: r.bytes, gateway: r.gateway, payload: Buffer.from(r.payload).toString("hex"),
});

function push<T>(list: T[], item: T, keep: number): void {
  if (list.length >= keep) list.shift();
  list.push(item);
}

/** Streams that follow `device`'s readings and commands. */
const watching = (device: string) => (s: Stream) => s.filter.device === device && sees(s.principal, device);

const nonEmpty = <T>(rows: T[]) => (rows.length === 0 ? undefined : { devices: rows });
