// Request validation for the admin API: every refusal names the field and says what is allowed.
import { isAbsolute } from "node:path";
import { boardModes, type Boards } from "./boards";
import { badRequest } from "./http";
import type { MqttAccess } from "./mqtt-acl";
import type { Mode } from "./registry";

type Obj = Record<string, unknown>;

/** The body as an object with only `allowed` fields; an empty body is an empty object. */
export function fields(body: unknown, allowed: string[]): Obj {
  if (body === undefined) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("body must be a JSON object");
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) {
      throw badRequest(allowed.length === 0 ? `unknown field "${k}": this call takes no fields` : `unknown field "${k}"; allowed: ${allowed.join(", ")}`);
    }
  }
  return body as Obj;
}

export function provisionRequest(body: unknown, boards: Boards): { board: string; mode?: Mode; name?: string } {
  const f = fields(body, ["board", "mode", "name"]);
  const known = [...boards.keys()].join(", ");
  if (f.board === undefined) throw badRequest(`board: required; one of ${known}`);
  if (typeof f.board !== "string") throw badRequest(`board: must be a string, one of ${known}`);
  const board = boards.get(f.board);
  if (board === undefined) throw badRequest(`board: unknown board ${JSON.stringify(f.board.slice(0, 64))}; one of ${known}`);
  let mode: Mode | undefined;
  if (f.mode !== undefined) {
    if (f.mode !== "dh" && f.mode !== "psk") throw badRequest(`mode: must be "dh" or "psk"`);
    if (!boardModes(board).includes(f.mode)) {
      throw badRequest(`mode: ${board.name} can only be provisioned in ${boardModes(board).join(" or ")} (its handshake is ${board.handshake})`);
    }
    mode = f.mode;
  }
  return { board: board.name, mode, name: nameField(f.name) };
}

/** An optional label: at most 64 characters, none of them control characters (it goes into files and logs). */
function nameField(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.length > 64 || /[\u0000-\u001f\u007f]/.test(v)) {
    throw badRequest("name: must be a string of at most 64 characters without control characters");
  }
  return v;
}

export const MAX_SCOPED_DEVICES = 1000;

export function mqttCredentialRequest(body: unknown): { name?: string; devices: "all" | string[]; access: MqttAccess } {
  const f = fields(body, ["name", "devices", "access"]);
  if (f.access !== "read" && f.access !== "command" && f.access !== "both") throw badRequest('access: required; "read" (readings and events), "command" (send commands) or "both"');
  let devices: "all" | string[];
  if (f.devices === "all") devices = "all";
  else if (Array.isArray(f.devices) && f.devices.length >= 1 && f.devices.length <= MAX_SCOPED_DEVICES) {
    devices = [...new Set(f.devices.map((d: unknown) => {
      if (typeof d !== "string") throw badRequest("devices: each entry must be a device id (a string)");
      return deviceId(d);
    }))];
  } else {
    throw badRequest(`devices: required; "all" or a list of 1 to ${MAX_SCOPED_DEVICES} device ids`);
  }
  return { name: nameField(f.name), devices, access: f.access };
}

export function mqttUsername(s: string): string {
  if (!/^app-[0-9a-f]{12}$/.test(s)) throw badRequest("username: must be app- and 12 lowercase hex characters, as the create call returned it");
  return s;
}

export function masterKeyRequest(body: unknown): { keyFile: string } | { generate: true } {
  const f = fields(body, ["keyFile", "generate"]);
  if (f.keyFile !== undefined && f.generate !== undefined) throw badRequest("give either keyFile or generate, not both");
  if (f.keyFile !== undefined) {
    if (typeof f.keyFile !== "string" || !isAbsolute(f.keyFile)) throw badRequest("keyFile: must be an absolute path on the controller's machine");
    return { keyFile: f.keyFile };
  }
  if (f.generate !== true) throw badRequest('give keyFile (an absolute path to the new key on the controller) or "generate": true');
  return { generate: true };
}

export function deviceId(s: string): string {
  if (!/^[0-9a-f]{8,64}$/.test(s)) throw badRequest("device id: must be 8-64 lowercase hex characters");
  return s;
}

export function query(q: URLSearchParams, allowed: string[]): void {
  for (const k of q.keys()) if (!allowed.includes(k)) throw badRequest(`unknown query parameter "${k}"; allowed: ${allowed.join(", ") || "none"}`);
}

export function boolParam(q: URLSearchParams, name: string): boolean | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (v !== "true" && v !== "false") throw badRequest(`${name}: must be true or false`);
  return v === "true";
}

export function limitParam(q: URLSearchParams, max: number): number | undefined {
  const v = q.get("limit");
  if (v === null) return undefined;
  if (!/^\d{1,6}$/.test(v) || Number(v) < 1 || Number(v) > max) throw badRequest(`limit: must be an integer from 1 to ${max}`);
  return Number(v);
}
