// Topics and message bodies of application delivery, laid out the way LoRaWAN network servers do it
// (ChirpStack: application/<app>/device/<devEui>/event/up and .../command/down; TTN: v3/<app>/devices/<id>/up
// and .../down/push), so an application written against them finds the same shape here:
//
//   <prefix>/devices/<deviceId>/up      controller -> application   one decrypted device message, QoS 1
//   <prefix>/devices/<deviceId>/down    application -> controller   a command for the device
//   <prefix>/devices/<deviceId>/events  controller -> application   session opened/closed, revoked, command rejected
//
// <prefix> defaults to "sesame" and may have several levels ("sesame/site-a"). Everything here is pure: no
// sockets, so the parsing rules are tested on their own and every malformed input gets a reason, never a throw.

export const DEFAULT_PREFIX = "sesame";
/** A compact record carries at most 4095 payload bytes (12-bit length), so a longer command cannot be sent. */
export const DEFAULT_MAX_COMMAND_BYTES = 4095;

/** Why `id` cannot be one MQTT topic level (a device id), or undefined when it can. */
export function deviceIdProblem(id: unknown): string | undefined {
  if (typeof id !== "string") return "a device id must be a string";
  if (id.length === 0) return "a device id must not be empty";
  if (id.length > 128) return "a device id must be at most 128 characters";
  // '/' would add topic levels, '+' and '#' are wildcards, control characters have no place in a topic.
  if (/[/+#\u0000-\u001f\u007f]/.test(id)) return `device id ${JSON.stringify(id)} must not contain '/', '+', '#' or control characters`;
  return undefined;
}

export function checkPrefix(prefix: string): string {
  if (typeof prefix !== "string" || prefix.length === 0) throw new TypeError("MQTT topic prefix must be a non-empty string such as \"sesame\"");
  if (/[+#\u0000]/.test(prefix)) throw new TypeError(`MQTT topic prefix ${JSON.stringify(prefix)} must not contain '+', '#' or NUL`);
  if (prefix.startsWith("/") || prefix.endsWith("/") || prefix.includes("//")) throw new TypeError(`MQTT topic prefix ${JSON.stringify(prefix)} must not start or end with '/' or have empty levels`);
  return prefix;
}

export type Topics = {
  prefix: string;
  up(deviceId: string): string;
  down(deviceId: string): string;
  events(deviceId: string): string;
  /** The subscription that receives every device's commands. */
  downFilter: string;
  /** Every device's readings (the controllers of a cluster watch one another's: ./cluster/readings.ts). */
  upFilter: string;
  /** The device id of a down topic, or undefined for any other topic. */
  deviceOfDown(topic: string): string | undefined;
  /** Which device's which topic `topic` is, or undefined when it is none of the three. */
  parse(topic: string): DeviceTopic | undefined;
};

export type TopicKind = "up" | "down" | "events";
export type DeviceTopic = { device: string; kind: TopicKind };
const KINDS: readonly string[] = ["up", "down", "events"];

export function topicsFor(prefix: string = DEFAULT_PREFIX): Topics {
  checkPrefix(prefix);
  const base = `${prefix}/devices/`;
  const parse = (topic: string): DeviceTopic | undefined => {
    if (!topic.startsWith(base)) return undefined;
    const rest = topic.slice(base.length);
    const slash = rest.lastIndexOf("/");
    const device = rest.slice(0, slash), kind = rest.slice(slash + 1);
    if (slash < 0 || !KINDS.includes(kind) || deviceIdProblem(device) !== undefined) return undefined;
    return { device, kind: kind as TopicKind };
  };
  return {
    prefix,
    up: (id) => `${base}${id}/up`,
    down: (id) => `${base}${id}/down`,
    events: (id) => `${base}${id}/events`,
    downFilter: `${base}+/down`,
    upFilter: `${base}+/up`,
    deviceOfDown(topic) {
      const t = parse(topic);
      return t?.kind === "down" ? t.device : undefined;
    },
    parse,
  };
}

// ---- uplinks and events ----

export type Uplink = {
  device: string;
  /** The record's sequence number: with `device`, a message id the application can deduplicate on. */
  seq: number;
  payload: Uint8Array;
  /** The gateway that received it. */
  gateway?: string;
  /** When the gateway received it (ms since the epoch or a Date); default: now. */
  receivedAt?: number | Date;
  /** The link it arrived over: "ble", "lora", "sim", ... */
  transport?: string;
};

export function uplinkBody(u: Uplink, now: number = Date.now()): string {
  const at = u.receivedAt === undefined ? now : u.receivedAt instanceof Date ? u.receivedAt.getTime() : u.receivedAt;
  return JSON.stringify({
    device: u.device,
    seq: u.seq,
    receivedAt: new Date(Number.isFinite(at) ? at : now).toISOString(),
    payload: Buffer.from(u.payload.buffer, u.payload.byteOffset, u.payload.byteLength).toString("base64"),
    size: u.payload.byteLength,
    gateway: u.gateway ?? null,
    transport: u.transport ?? null,
  });
}

export type EventDetails = Record<string, string | number | boolean | null>;

/** {device, event, at, ...details}; the three named fields win over details of the same name. */
export function eventBody(device: string, event: string, details: EventDetails = {}, now: number = Date.now()): string {
  return JSON.stringify({ ...details, device, event, at: new Date(now).toISOString() });
}

// ---- commands ----

export type Command = { payload: Uint8Array; confirmed: boolean };
export type CommandParse = { ok: true; command: Command } | { ok: false; reason: string };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * A command body: {"payload": "<base64>"} or {"payload": "<hex>", "encoding": "hex"}, optional
 * "confirmed": boolean. Other fields are ignored (room for fPort-like additions). Strict: a payload that is
 * not exactly valid in its encoding is refused rather than half-decoded, since it becomes bytes on a device.
 */
export function parseCommand(body: Uint8Array, maxBytes: number = DEFAULT_MAX_COMMAND_BYTES): CommandParse {
  // A hex payload of maxBytes is 2*maxBytes characters; anything much longer is refused before JSON.parse.
  if (body.byteLength > 2 * maxBytes + 1024) return { ok: false, reason: `body of ${body.byteLength} bytes is too long (payload limit ${maxBytes} bytes)` };
  let msg: unknown;
  try {
    msg = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch {
    return { ok: false, reason: "body is not JSON; send {\"payload\": \"<base64>\"}" };
  }
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) return { ok: false, reason: "body must be a JSON object such as {\"payload\": \"<base64>\"}" };
  const { payload, encoding = "base64", confirmed = false } = msg as Record<string, unknown>;
  if (typeof payload !== "string") return { ok: false, reason: "\"payload\" must be a string (base64, or hex with \"encoding\": \"hex\")" };
  if (typeof confirmed !== "boolean") return { ok: false, reason: "\"confirmed\" must be true or false" };
  let bytes: Buffer;
  if (encoding === "base64") {
    if (!BASE64.test(payload)) return { ok: false, reason: "\"payload\" is not valid base64 (padded, standard alphabet)" };
    bytes = Buffer.from(payload, "base64");
  } else if (encoding === "hex") {
    if (!HEX.test(payload)) return { ok: false, reason: "\"payload\" is not valid hex (an even number of 0-9a-f digits)" };
    bytes = Buffer.from(payload, "hex");
  } else {
    return { ok: false, reason: "\"encoding\" must be \"base64\" or \"hex\"" };
  }
  if (bytes.byteLength > maxBytes) return { ok: false, reason: `payload of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}` };
  return { ok: true, command: { payload: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), confirmed } };
}
