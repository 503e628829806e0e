// The admin API's routes for watching and commanding the fleet (what the web console shows, and usable with
// curl): who am I, the boards, the fleet, one device, a command, and the event stream. Each is an admin
// call like the others (authenticated, rate limited, audited); the event stream is audited once, when it
// opens. Rows a principal may not see are left out; acting on a device it may not see is a 404, as for a
// device that does not exist.
import { boardModes } from "../boards";
import { HttpError, badRequest } from "../http";
import { DEFAULT_MAX_COMMAND_BYTES } from "../mqtt-topics";
import { sees, type Principal } from "../principal";
import type { Route } from "../admin-routes";
import type { ControllerStore } from "../store";
import { deviceId, fields, query } from "../validate";
import { FLEET_PAGE, FLEET_PAGE_MAX, type FleetView, type LiveFeed } from "./feed";

/** What sending a command did: its id (numbered per device in the database: what its events name), or why not. */
export type CommandOutcome = { id: number } | { rejected: string };

export type LiveRouteDeps = {
  store: ControllerStore;
  feed: LiveFeed;
  command: (device: string, payload: Uint8Array) => Promise<CommandOutcome>;
};

const ID = "([^/]+)";

export function liveRoutes({ store, feed, command }: LiveRouteDeps): Route[] {
  /** The device id in the path, if `p` may see it (else 404, as if it did not exist). */
  const visible = (p: Principal, raw: string) => {
    const id = deviceId(raw);
    if (!sees(p, id)) throw new HttpError(404, "not-found", `device ${id} not found`);
    return id;
  };
  return [
    {
      method: "GET", path: /^\/v1\/whoami$/, action: "whoami",
      async handle(c) {
        query(c.query, []);
        const p = c.principal;
        const list = (x: "all" | ReadonlySet<string>) => (x === "all" ? "all" : [...x].sort());
        return { status: 200, body: { actor: p.actor, devices: list(p.devices), actions: list(p.actions) } };
      },
    },
    {
      method: "GET", path: /^\/v1\/boards$/, action: "board.list",
      async handle(c) {
        query(c.query, []);
        const boards = [...store.registry.boards.values()].map((b) => ({ name: b.name, modes: boardModes(b) }));
        return { status: 200, body: { boards } };
      },
    },
    {
      method: "GET", path: /^\/v1\/fleet$/, action: "fleet.list",
      async handle(c) {
        query(c.query, VIEW_PARAMS);
        const asked = VIEW_PARAMS.some((k) => c.query.has(k));
        return { status: 200, body: await feed.fleet(c.principal, asked ? fleetView(c.query) : undefined) };
      },
    },
    {
      method: "GET", path: new RegExp(`^/v1/fleet/devices/${ID}$`), action: "fleet.device",
      async handle(c) {
        query(c.query, []);
        const id = visible(c.principal, c.params[0]);
        c.target(id);
        const d = await feed.device(id);
        if (d === undefined) throw new HttpError(404, "not-found", `device ${id} not found`);
        return { status: 200, body: d };
      },
    },
    {
      method: "POST", path: new RegExp(`^/v1/devices/${ID}/command$`), action: "device.command",
      async handle(c) {
        query(c.query, []);
        const id = visible(c.principal, c.params[0]);
        c.target(id);
        const payload = commandPayload(c.body);
        const d = await store.registry.get(id);
        if (d === undefined) throw new HttpError(404, "not-found", `device ${id} not found`);
        if (d.revokedAt !== null) throw new HttpError(409, "bad-request", `device ${id} is revoked`);
        const out = await command(id, payload);
        c.note({ bytes: payload.length });
        if ("rejected" in out) throw new HttpError(409, "bad-request", `not sent: ${out.rejected}`);
        return { status: 202, body: { device: id, id: out.id, bytes: payload.length } };
      },
    },
    {
      method: "GET", path: /^\/v1\/events$/, action: "events.stream",
      async handle(c) {
        query(c.query, ["device", ...VIEW_PARAMS]);
        const view = fleetView(c.query);
        const raw = c.query.get("device");
        const device = raw === null ? undefined : visible(c.principal, raw);
        if (device !== undefined) c.target(device);
        feed.streams.admit(c.principal);
        return { status: 200, body: undefined, stream: (res) => feed.startStream(c.principal, device, res, view) };
      },
    },
  ];
}

const VIEW_PARAMS = ["q", "from", "size"];
const Q_MAX = 64;

/** ?q=&from=&size=: the rows matching q (in the id or name), from the from-th (0 first), size of them (FLEET_PAGE unless given). */
function fleetView(q: URLSearchParams): FleetView {
  const text = q.get("q") ?? "";
  if (text.length > Q_MAX) throw badRequest(`q: at most ${Q_MAX} characters (a part of a device's id or name)`);
  const from = q.get("from") ?? "0", size = q.get("size") ?? String(FLEET_PAGE);
  if (!/^\d{1,9}$/.test(from)) throw badRequest("from: must be a whole number, the first row to show (0 is the first)");
  if (!/^\d{1,4}$/.test(size) || Number(size) < 1 || Number(size) > FLEET_PAGE_MAX) throw badRequest(`size: must be a whole number from 1 to ${FLEET_PAGE_MAX}, the rows to show`);
  return { q: text, from: Number(from), size: Number(size) };
}

/** {"payload": base64}: 1 to 4095 bytes (a compact record's most). */
function commandPayload(body: unknown): Uint8Array {
  const f = fields(body, ["payload"]);
  if (typeof f.payload !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(f.payload) || f.payload.length % 4 !== 0) {
    throw badRequest('payload: required, the command\'s bytes in base64 (e.g. "AgE=" is 02 01, LED on)');
  }
  const b = Buffer.from(f.payload, "base64");
  if (b.length === 0 || b.length > DEFAULT_MAX_COMMAND_BYTES) throw badRequest(`payload: must be 1 to ${DEFAULT_MAX_COMMAND_BYTES} bytes`);
  return Uint8Array.from(b);
}
