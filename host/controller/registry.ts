// The device registry: provisioning (credentials + the configuration to flash), listing, revocation, key
// rotation, and the lookups a handshake responder makes. Long-term secrets are kept only where a responder
// needs them: a psk device's key store {current, previous}, wrapped by the master key. A dh device's
// secret goes into its configuration and nowhere else; the registry keeps its public key and kid.
import type { BoardProfile } from "../../firmware/board";
import type { Db, Queryable } from "./db/db";
import { betweenQueries, bytes } from "./db/db";
import { boardModes, type Boards } from "./boards";
import { dhConfig, hex, newDeviceId, newDhKeys, newPsk, pidOf, pskConfig, PSK_SIZE } from "./credentials";
import { StaleVersionError, type Keyring } from "./keyring";
import { DEFAULT_RESPONDER, responderKey, responderPublicKey, type ResponderKey } from "./responder-key";
import { closeSessionsOf } from "./sessions";

export type Mode = "dh" | "psk";

export type DeviceRecord = {
  id: string;
  name: string;
  board: string;
  mode: Mode;
  /** dh: the key id the device sends (encrypted) in its handshake. */
  kid: string | null;
  /** dh: the device's static X25519 public key, hex. */
  publicKey: string | null;
  /** Increments on every key change (rotation, psk evolution). */
  generation: number;
  createdAt: string;
  rotatedAt: string | null;
  revokedAt: string | null;
};

export type Provisioned = { device: DeviceRecord; config: string };

/** Why a device's live sessions must end. */
export type RevokeEvent = { deviceId: string; reason: "revoked" | "rotated" };
export type RevokeListener = (e: RevokeEvent) => void | Promise<void>;
/** A device's keys were made (provisioned) or replaced (rotated). */
export type KeysListener = (deviceId: string) => void | Promise<void>;

/** A psk device's key store as the handshake uses it (firmware/handshake/psk.ts PskKeys). */
export type PskKeyStore = { current: Uint8Array; previous: Uint8Array | undefined };

export class RegistryError extends Error {
  constructor(readonly code: "not-found" | "bad-request" | "conflict", message: string) {
    super(message);
  }
}

type Row = {
  id: string; name: string; board: string; mode: Mode; kid: string | null; public_key: unknown; generation: number;
  created_at: Date; rotated_at: Date | null; revoked_at: Date | null;
};
const COLUMNS = "id, name, board, mode, kid, public_key, generation, created_at, rotated_at, revoked_at";

type PskRow = { id: string; wrapped_key: unknown; wrap_version: number };
/** Devices a query of list() reads at most: about 10-15 ms of PGlite's time (the controller's thread) each. */
export const LIST_PAGE = 500;
/** Devices whose psk keys one query reads at most (lookupPskMany). */
const PSK_READ_MANY = 1000;

function record(r: Row): DeviceRecord {
  return {
    id: r.id, name: r.name, board: r.board, mode: r.mode, kid: r.kid,
    publicKey: r.public_key === null ? null : hex(bytes(r.public_key)), generation: r.generation,
    createdAt: r.created_at.toISOString(), rotatedAt: r.rotated_at?.toISOString() ?? null, revokedAt: r.revoked_at?.toISOString() ?? null,
  };
}

const UNIQUE_VIOLATION = "23505";
const isUniqueViolation = (e: unknown) => (e as { code?: string }).code === UNIQUE_VIOLATION;

/** {current, previous} as stored (wrapped as one value): 32 or 64 bytes. */
function packStore(s: PskKeyStore): Uint8Array {
  return s.previous === undefined ? s.current.slice() : Buffer.concat([s.current, s.previous]);
}
function unpackStore(b: Uint8Array): PskKeyStore {
  if (b.length !== PSK_SIZE && b.length !== 2 * PSK_SIZE) throw new Error("registry: stored psk key store has a bad length");
  return { current: b.slice(0, PSK_SIZE), previous: b.length > PSK_SIZE ? b.slice(PSK_SIZE) : undefined };
}

export class Registry {
  private readonly revokeListeners = new Set<RevokeListener>();
  private readonly keyListeners = new Set<KeysListener>();

  constructor(
    private readonly db: Db,
    private readonly ring: Keyring,
    readonly boards: Boards,
    private readonly responderId = DEFAULT_RESPONDER,
  ) {}

  /** Calls `cb` after a device is revoked or its keys rotated, so whoever holds its sessions ends them. */
  onRevoke(cb: RevokeListener): () => void {
    this.revokeListeners.add(cb);
    return () => this.revokeListeners.delete(cb);
  }

  /**
   * Calls `cb` after a device is provisioned or rotated, before the call that did it returns: whoever hands
   * keys out (this controller's grants to its gateways) does so before the caller is told the device is ready.
   * A failing listener does not fail the change; the controllers' periodic registry read catches up.
   */
  onKeys(cb: KeysListener): () => void {
    this.keyListeners.add(cb);
    return () => this.keyListeners.delete(cb);
  }

  board(name: string): BoardProfile {
    const b = this.boards.get(name);
    if (b === undefined) throw new RegistryError("bad-request", `board: unknown board "${name}"; known: ${[...this.boards.keys()].join(", ")}`);
    return b;
  }

  async provision(req: { board: string; mode?: Mode; name?: string }): Promise<Provisioned> {
    const board = this.board(req.board);
    const mode = req.mode ?? board.handshake;
    if (!boardModes(board).includes(mode)) {
      throw new RegistryError("bad-request", `mode: ${board.name} can only be provisioned in ${boardModes(board).join(" or ")} (its handshake is ${board.handshake})`);
    }
    const id = newDeviceId();
    const out = await this.writeCredentials(board, mode, id, async (tx, cols) => {
      await tx.query(
        `INSERT INTO devices (id, name, board, mode, kid, public_key, wrapped_key, wrap_version, pid)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [id, req.name ?? "", board.name, mode, cols.kid, cols.publicKey, cols.wrapped, cols.version, cols.pid],
      );
    });
    await callAll(this.keyListeners, id);
    return out;
  }

  /** New credentials for a live device (its sessions end); returns the configuration to flash again. */
  async rotate(id: string): Promise<Provisioned> {
    const cur = await this.get(id);
    if (cur === undefined) throw new RegistryError("not-found", `device ${id} not found`);
    if (cur.revokedAt !== null) throw new RegistryError("conflict", `device ${id} is revoked`);
    const out = await this.writeCredentials(this.board(cur.board), cur.mode, id, async (tx, cols) => {
      const rows = await tx.query(
        `UPDATE devices SET kid = $2, public_key = $3, wrapped_key = $4, wrap_version = $5, pid = $6, pid_previous = NULL,
           generation = generation + 1, rotated_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id`,
        [id, cols.kid, cols.publicKey, cols.wrapped, cols.version, cols.pid],
      );
      if (rows.length === 0) throw new RegistryError("conflict", `device ${id} was revoked meanwhile`);
      await closeSessionsOf(tx, id, "keys rotated");
    });
    await callAll(this.revokeListeners, { deviceId: id, reason: "rotated" });
    await callAll(this.keyListeners, id);
    return out;
  }

  /** Revokes a device: it is never returned by a lookup again and its sessions are ended. Idempotent. */
  async revoke(id: string): Promise<{ device: DeviceRecord; listenerFailures: number }> {
    const row = await this.db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        `UPDATE devices SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`, [id]);
      if (rows.length === 0) throw new RegistryError("not-found", `device ${id} not found`);
      await closeSessionsOf(tx, id, "device revoked");
      return rows[0];
    });
    const listenerFailures = await callAll(this.revokeListeners, { deviceId: id, reason: "revoked" });
    return { device: record(row), listenerFailures };
  }

  async get(id: string): Promise<DeviceRecord | undefined> {
    const rows = await this.db.query<Row>(`SELECT ${COLUMNS} FROM devices WHERE id = $1`, [id]);
    return rows.length === 0 ? undefined : record(rows[0]);
  }

  /** The database's clock (ms since the epoch): where a changedSince() read can start from next time. */
  async clock(): Promise<number> {
    const rows = await this.db.query<{ at: Date }>("SELECT clock_timestamp() AS at");
    return rows[0].at.getTime();
  }

  /**
   * Devices whose row changed at or after `sinceMs` on the database's clock, revoked ones too (migrations/005),
   * oldest change first: a page at a time, as list() (a rotation of the whole fleet changes every row). A row
   * changed again during the read may come twice; none is missed.
   */
  async changedSince(sinceMs: number): Promise<DeviceRecord[]> {
    return this.pages("changed_at", "changed_at >= $2", [new Date(sinceMs)], () => true);
  }

  /**
   * Every device (revoked ones too unless told otherwise) in the registry's order, created first, first. Read a
   * page at a time along that order (migrations/006), a turn of the event loop between pages: PGlite runs in
   * the controller's own thread, and at 50,000 devices one query for all of them kept it from anything else
   * for 0.8-1.0 s (the key grants read whole every 10 minutes and when a gateway connects); pages of
   * LIST_PAGE take as long in all, 11-15 ms at a time. The key (created_at, id) never changes, so no row is
   * read twice or missed; a row written meanwhile is seen or not, as if written just before or after.
   */
  async list(opts: { includeRevoked?: boolean } = {}): Promise<DeviceRecord[]> {
    const all = opts.includeRevoked ?? true;
    // (Revoked rows are left out here, not in the query: with its filter the planner was seen to leave the index.)
    return this.pages("created_at", "true", [], (r) => all || r.revoked_at === null);
  }

  /**
   * One page of list(): the devices after `after` (the `next` of the page before; the first page without it),
   * `limit` at most (fewer where revoked ones are left out), and `next` while more may follow. A RegistryError
   * for a cursor no page gave.
   */
  async listPage(opts: { includeRevoked?: boolean; limit: number; after?: string }): Promise<{ devices: DeviceRecord[]; next?: string }> {
    const all = opts.includeRevoked ?? true;
    let after: [string, string] | undefined;
    if (opts.after !== undefined) {
      const c = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)\|([0-9a-f]{8,64})$/.exec(Buffer.from(opts.after, "base64url").toString());
      if (c === null) throw new RegistryError("bad-request", "after: not a cursor this API gave; pass the `next` of the page before");
      after = [c[1], c[2]];
    }
    const page = await this.page("created_at", "true", [], opts.limit, after);
    const devices = page.rows.filter((r) => all || r.revoked_at === null).map(record);
    return page.last === undefined ? { devices } : { devices, next: Buffer.from(`${page.last[0]}|${page.last[1]}`).toString("base64url") };
  }

  /**
   * The devices `where` (its parameters from $2) in the order (`at`, id), LIST_PAGE to a query, a turn of the
   * event loop between queries, those `keep` keeps.
   */
  private async pages(at: "created_at" | "changed_at", where: string, params: unknown[], keep: (r: Row) => boolean): Promise<DeviceRecord[]> {
    const out: DeviceRecord[] = [];
    let after: [string, string] | undefined;
    for (;;) {
      const page = await this.page(at, where, params, LIST_PAGE, after);
      for (const r of page.rows) if (keep(r)) out.push(record(r));
      if (page.last === undefined) return out;
      after = page.last;
      await betweenQueries();
    }
  }

  /**
   * Up to `limit` devices `where`, after the cursor `after` in the order (`at`, id), and the cursor of the last
   * when the page is full (more may follow): `at` in ISO 8601, UTC, to the microsecond (a Date keeps
   * milliseconds; the text a timestamptz casts to depends on the server's DateStyle), and the id.
   */
  private async page(at: "created_at" | "changed_at", where: string, params: unknown[], limit: number, after: [string, string] | undefined): Promise<{ rows: Row[]; last?: [string, string] }> {
    const n = params.length;
    const rows = await this.db.query<Row & { at_key: string }>(
      `SELECT ${COLUMNS}, to_char(${at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at_key FROM devices WHERE ${where}` +
        `${after === undefined ? "" : ` AND (${at}, id) > ($${n + 2}::timestamptz, $${n + 3})`} ORDER BY ${at}, id LIMIT $1`,
      after === undefined ? [limit, ...params] : [limit, ...params, ...after],
    );
    if (rows.length < limit) return { rows };
    const last = rows[rows.length - 1];
    return { rows, last: [last.at_key, last.id] };
  }

  // ---- lookups for handshake responders; revoked devices are never returned ----

  /** dh: the live device with this kid and its static public key. */
  async lookupKid(kid: Uint8Array | string): Promise<{ deviceId: string; publicKey: Uint8Array } | undefined> {
    const k = typeof kid === "string" ? kid.toLowerCase() : hex(kid);
    const rows = await this.db.query<{ id: string; public_key: unknown }>(
      "SELECT id, public_key FROM devices WHERE kid = $1 AND mode = 'dh' AND revoked_at IS NULL", [k]);
    return rows.length === 0 ? undefined : { deviceId: rows[0].id, publicKey: bytes(rows[0].public_key) };
  }

  /** psk: a live device's key store, unwrapped. */
  async lookupPsk(deviceId: string): Promise<PskKeyStore | undefined> {
    return this.readPsk("id = $1", deviceId).then((r) => r?.keys);
  }

  /**
   * psk: the key stores of these live devices, unwrapped, PSK_READ_MANY to a query (a gateway's grants for a
   * whole fleet in a few queries, not one per device). A device not in the map is not a live psk device.
   */
  async lookupPskMany(deviceIds: readonly string[]): Promise<Map<string, PskKeyStore>> {
    const out = new Map<string, PskKeyStore>();
    for (let at = 0; at < deviceIds.length; at += PSK_READ_MANY) {
      const rows = await this.db.query<PskRow>(
        "SELECT id, wrapped_key, wrap_version FROM devices WHERE id = ANY($1::text[]) AND mode = 'psk' AND revoked_at IS NULL",
        [deviceIds.slice(at, at + PSK_READ_MANY)]);
      for (const r of rows) {
        let keys: PskKeyStore | undefined;
        try {
          keys = this.unwrapPsk(r);
        } catch (e) {
          // A rotation re-wrapped the row and retired its version since the read: read on its own again.
          if (!(e instanceof StaleVersionError)) throw e;
          keys = await this.lookupPsk(r.id);
        }
        if (keys !== undefined) out.set(r.id, keys);
      }
    }
    return out;
  }

  /** psk: the live device whose current or previous key shows this pid, and that key. */
  async findPskByPid(pid: Uint8Array | string): Promise<{ deviceId: string; key: Uint8Array } | undefined> {
    const p = typeof pid === "string" ? pid.toLowerCase() : hex(pid);
    const r = await this.readPsk("(pid = $1 OR pid_previous = $1)", p);
    if (r === undefined) return undefined;
    if (pidOf(r.keys.current) === p) return { deviceId: r.id, key: r.keys.current };
    if (r.keys.previous !== undefined && pidOf(r.keys.previous) === p) return { deviceId: r.id, key: r.keys.previous };
    return undefined;
  }

  /** psk: stores the key store after the handshake evolved it (pskConfirm), so a restart keeps it. */
  async savePsk(deviceId: string, keys: PskKeyStore): Promise<void> {
    if (keys.current.length !== PSK_SIZE || (keys.previous !== undefined && keys.previous.length !== PSK_SIZE)) {
      throw new RangeError(`registry: psk keys must be ${PSK_SIZE} bytes`);
    }
    const packed = packStore(keys);
    try {
      await this.db.transaction((tx) =>
        this.ring.wrapForWrite(tx, "device", deviceId, packed, async (w) => {
          const rows = await tx.query(
            `UPDATE devices SET wrapped_key = $2, wrap_version = $3, pid = $4, pid_previous = $5, generation = generation + 1
             WHERE id = $1 AND mode = 'psk' AND revoked_at IS NULL RETURNING id`,
            [deviceId, w.wrapped, w.version, pidOf(keys.current), keys.previous === undefined ? null : pidOf(keys.previous)],
          );
          if (rows.length === 0) throw new RegistryError("not-found", `device ${deviceId} is not a live psk device`);
        }),
      );
    } finally {
      packed.fill(0);
    }
  }

  /** The responder's static public key every dh device pins (created on first use). */
  responderPublicKey(): Promise<Uint8Array> {
    return responderPublicKey(this.db, this.ring, this.responderId);
  }

  /** The responder's static key pair with its secret, for whoever answers dh handshakes. */
  responderKey(): Promise<ResponderKey> {
    return responderKey(this.db, this.ring, this.responderId);
  }

  // ---- internals ----

  private async readPsk(where: string, arg: string): Promise<{ id: string; keys: PskKeyStore } | undefined> {
    for (let attempt = 0; ; attempt++) {
      const rows = await this.db.query<PskRow>(
        `SELECT id, wrapped_key, wrap_version FROM devices WHERE ${where} AND mode = 'psk' AND revoked_at IS NULL LIMIT 1`, [arg]);
      if (rows.length === 0) return undefined;
      try {
        return { id: rows[0].id, keys: this.unwrapPsk(rows[0]) };
      } catch (e) {
        // A rotation re-wrapped the row and retired its version between the read and the unwrap.
        if (!(e instanceof StaleVersionError) || attempt > 2) throw e;
      }
    }
  }

  private unwrapPsk(r: PskRow): PskKeyStore {
    const packed = this.ring.unwrap("device", r.id, { wrapped: bytes(r.wrapped_key), version: r.wrap_version });
    const keys = unpackStore(packed);
    packed.fill(0);
    return keys;
  }

  private async writeCredentials(
    board: BoardProfile, mode: Mode, id: string,
    write: (tx: Queryable, cols: { kid: string | null; publicKey: Uint8Array | null; wrapped: Uint8Array | null; version: number | null; pid: string | null }) => Promise<void>,
  ): Promise<Provisioned> {
    if (mode === "psk") {
      const c = newPsk();
      try {
        await this.db.transaction((tx) =>
          this.ring.wrapForWrite(tx, "device", id, c.psk, (w) => write(tx, { kid: null, publicKey: null, wrapped: w.wrapped, version: w.version, pid: c.pid })));
        return { device: (await this.get(id))!, config: pskConfig(board, id, c.psk) };
      } finally {
        c.psk.fill(0);
      }
    }
    const gateway = await this.responderPublicKey();
    // kids are 4 random bytes: a clash with a live device is possible in a large fleet; draw again.
    for (let attempt = 0; ; attempt++) {
      const c = newDhKeys();
      try {
        await this.db.transaction((tx) => write(tx, { kid: c.kid, publicKey: c.publicKey, wrapped: null, version: null, pid: null }));
        return { device: (await this.get(id))!, config: dhConfig(board, c, gateway) };
      } catch (e) {
        if (!isUniqueViolation(e) || attempt >= 8) throw e;
      } finally {
        c.secret.fill(0);
      }
    }
  }
}

/** Calls every listener with `arg`, each to the end whatever the others do; how many failed. */
async function callAll<T>(listeners: Set<(arg: T) => void | Promise<void>>, arg: T): Promise<number> {
  const results = await Promise.allSettled([...listeners].map(async (cb) => cb(arg)));
  return results.filter((r) => r.status === "rejected").length;
}
