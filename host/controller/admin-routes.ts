// The admin API's routes: what each call does, the audit action it is recorded as, and its target.
// Handlers validate their input (validate.ts) and throw HttpError / RegistryError for refusals.
import { badRequest, HttpError } from "./http";
import { MasterKey, MasterKeyError, readMasterKeyFile } from "./masterkey";
import { mqttRoutes } from "./mqtt-routes";
import type { ServerResponse } from "node:http";
import type { Principal } from "./principal";
import type { ControllerStore } from "./store";
import { boolParam, deviceId, fields, limitParam, masterKeyRequest, provisionRequest, query } from "./validate";

export type RouteContext = {
  /** Who calls, and what it may see (./principal.ts). */
  principal: Principal;
  params: string[];
  query: URLSearchParams;
  body: unknown;
  /** Sets the audit row's target (a device id, a key version). */
  target(t: string): void;
  /** Adds non-secret facts to the audit row's detail. */
  note(d: Record<string, unknown>): void;
};

/** `stream`: the response is not `body` but whatever this writes to it, after the call is audited (an event stream). */
export type RouteResult = { status: number; body: unknown; stream?: (res: ServerResponse) => Promise<void> };

export type Route = {
  method: "GET" | "POST";
  path: RegExp;
  action: string;
  handle(ctx: RouteContext): Promise<RouteResult>;
};

export type RouteDeps = { store: ControllerStore };

const ID = "([^/]+)";

const NO_KEY_DIR =
  "this controller has no master key directory (its key comes from SESAME_MASTER_KEY alone), so a new key would be kept " +
  "nowhere a restart looks and every row wrapped under it would be lost with the process. Restart the controller with " +
  "--master-key-dir <dir> (SESAME_MASTER_KEY still counts), then rotate; the new key is kept there";

export function adminRoutes({ store }: RouteDeps): Route[] {
  const { registry, sessions, audit } = store;
  return [
    {
      method: "POST", path: /^\/v1\/devices$/, action: "device.provision",
      async handle(c) {
        query(c.query, []);
        const req = provisionRequest(c.body, registry.boards);
        const p = await registry.provision(req);
        c.target(p.device.id);
        c.note({ board: p.device.board, mode: p.device.mode });
        return { status: 201, body: p };
      },
    },
    {
      method: "GET", path: /^\/v1\/devices$/, action: "device.list",
      async handle(c) {
        query(c.query, ["revoked", "limit", "after"]);
        const withRevoked = boolParam(c.query, "revoked") ?? true;
        const limit = limitParam(c.query, 10_000);
        const after = c.query.get("after") ?? undefined;
        // Pages on request (limit, then after = the `next` of the page before); without, the whole fleet in one answer.
        if (limit === undefined && after === undefined) return { status: 200, body: { devices: await registry.list({ includeRevoked: withRevoked }) } };
        return { status: 200, body: await registry.listPage({ includeRevoked: withRevoked, limit: limit ?? 1000, after }) };
      },
    },
    {
      method: "GET", path: new RegExp(`^/v1/devices/${ID}$`), action: "device.get",
      async handle(c) {
        query(c.query, []);
        const id = deviceId(c.params[0]);
        c.target(id);
        const d = await registry.get(id);
        if (d === undefined) throw new HttpError(404, "not-found", `device ${id} not found`);
        return { status: 200, body: { device: d } };
      },
    },
    {
      method: "POST", path: new RegExp(`^/v1/devices/${ID}/revoke$`), action: "device.revoke",
      async handle(c) {
        query(c.query, []);
        fields(c.body, []);
        const id = deviceId(c.params[0]);
        c.target(id);
        const r = await registry.revoke(id);
        c.note({ listenerFailures: r.listenerFailures });
        return { status: 200, body: r };
      },
    },
    {
      method: "POST", path: new RegExp(`^/v1/devices/${ID}/rotate$`), action: "device.rotate",
      async handle(c) {
        query(c.query, []);
        fields(c.body, []);
        const id = deviceId(c.params[0]);
        c.target(id);
        const p = await registry.rotate(id);
        c.note({ generation: p.device.generation });
        return { status: 200, body: p };
      },
    },
    {
      method: "GET", path: /^\/v1\/sessions$/, action: "session.list",
      async handle(c) {
        query(c.query, ["open", "device", "limit"]);
        const device = c.query.get("device");
        const list = await sessions.list({
          openOnly: boolParam(c.query, "open"), deviceId: device === null ? undefined : deviceId(device), limit: limitParam(c.query, 10_000),
        });
        return { status: 200, body: { sessions: list } };
      },
    },
    {
      method: "GET", path: /^\/v1\/audit$/, action: "audit.list",
      async handle(c) {
        query(c.query, ["limit"]);
        return { status: 200, body: { entries: await audit.list({ limit: limitParam(c.query, 10_000) }) } };
      },
    },
    {
      method: "POST", path: /^\/v1\/master-key\/rotate$/, action: "master-key.rotate",
      async handle(c) {
        query(c.query, []);
        const req = masterKeyRequest(c.body);
        // A new key kept nowhere the next start looks would strand every row wrapped under it.
        if (store.masterKeyDir === undefined) throw badRequest(`${"keyFile" in req ? "keyFile" : "generate"}: ${NO_KEY_DIR}`);
        let key: MasterKey;
        if ("keyFile" in req) {
          try {
            key = readMasterKeyFile(req.keyFile);
          } catch (e) {
            if (e instanceof MasterKeyError) throw badRequest(`keyFile: ${e.message}`);
            throw e;
          }
        } else {
          key = MasterKey.generate();
        }
        c.note({ fingerprint: key.fingerprint });
        let r;
        try {
          r = await store.rotateMasterKey(key);
        } catch (e) {
          if (e instanceof MasterKeyError) throw new HttpError(409, "bad-request", e.message);
          throw e;
        }
        c.target(`v${r.version}`);
        c.note({ version: r.version, rewrapped: r.rewrapped, retired: r.retired });
        return { status: 200, body: r };
      },
    },
    ...mqttRoutes(store),
  ];
}
