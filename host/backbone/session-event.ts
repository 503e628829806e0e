// SESSION_EVENT's detail (host/backbone/frame.ts): how a terminate-mode gateway tells the controller about
// the device sessions it holds, for the controller's session log, and what became of the commands it was
// given (the gateway retransmits them to the device; the controller closes them, or sends them again).
//
//   detail = spi (3 bytes, big-endian) | text (UTF-8: the link on SESSION_OPENED, the reason on SESSION_CLOSED)
//   COMMAND_STATE: detail = the command's id (3 bytes, big-endian: the id its DOWNLINK carried) | state:
//   "queued", "acked" (by the device), "lost" (out of tries), "refused" (not queued: no session with the
//   device here, or its queue full)
//
// A SESSION_CLOSED with an empty device is "every session I reported is gone": a gateway sends it first
// in each run (it started, so it holds no session it may have reported before).
import { COMMAND_STATE, KIND_SESSION_EVENT, MAX_ID, SESSION_CLOSED, SESSION_OPENED, type SessionEvent } from "./frame";

export type CommandState = "queued" | "acked" | "lost" | "refused";
const COMMAND_STATES: readonly string[] = ["queued", "acked", "lost", "refused"] satisfies CommandState[];

export type SessionNotice =
  | { event: "open" | "close"; device: string; spi: number; text: string }
  | { event: "all-closed"; text: string }
  | { event: "command"; device: string; id: number; state: CommandState };

const SPI_MAX = 0xffffff;
/** Link names and reasons are short; a longer text is cut (it is for people, not for parsing). */
const TEXT_MAX = 200;

/** A session opened or closed on the sending gateway; `device` is the session's peer in hex. */
export function sessionEvent(event: "open" | "close", device: string, spi: number, text: string): SessionEvent {
  if (!Number.isInteger(spi) || spi < 0 || spi > SPI_MAX) throw new RangeError(`session event: spi must be a 24-bit integer, not ${spi}`);
  return { kind: KIND_SESSION_EVENT, device: deviceBytes(device), event: event === "open" ? SESSION_OPENED : SESSION_CLOSED, detail: detail(spi, text) };
}

/** What became of a command for `device` (its peer in hex); `id` is the command's id (24 bits). */
export function commandEvent(device: string, id: number, state: CommandState): SessionEvent {
  if (!Number.isInteger(id) || id < 0 || id > SPI_MAX) throw new RangeError(`command event: id must be a 24-bit integer, not ${id}`);
  return { kind: KIND_SESSION_EVENT, device: deviceBytes(device), event: COMMAND_STATE, detail: detail(id, state) };
}

function deviceBytes(device: string): Buffer {
  const id = Buffer.from(device, "hex");
  if (id.length === 0 || id.length > MAX_ID || id.toString("hex") !== device.toLowerCase()) throw new RangeError(`session event: device must be 1..${MAX_ID} bytes in hex`);
  return id;
}

/** Every session the sender reported is closed (it restarted). */
export function allSessionsClosed(reason: string): SessionEvent {
  return { kind: KIND_SESSION_EVENT, device: new Uint8Array(0), event: SESSION_CLOSED, detail: detail(0, reason) };
}

/** The notice in a decoded SESSION_EVENT, or why it is not one (it came from a peer: never thrown). */
export function readSessionEvent(m: SessionEvent): SessionNotice | string {
  if (m.detail.length < 3) return "session event: detail shorter than its 3-byte spi";
  if (m.detail.length > 3 + TEXT_MAX * 4) return "session event: text too long";
  const spi = (m.detail[0] << 16) | (m.detail[1] << 8) | m.detail[2];
  const text = Buffer.from(m.detail.buffer, m.detail.byteOffset + 3, m.detail.length - 3).toString("utf8");
  if (m.device.length === 0) return m.event === SESSION_CLOSED ? { event: "all-closed", text } : "session event: an open or a command without a device";
  if (m.event === COMMAND_STATE) {
    if (!COMMAND_STATES.includes(text)) return `command event: unknown state ${JSON.stringify(text.slice(0, 20))}`;
    return { event: "command", device: Buffer.from(m.device).toString("hex"), id: spi, state: text as CommandState };
  }
  return { event: m.event === SESSION_OPENED ? "open" : "close", device: Buffer.from(m.device).toString("hex"), spi, text };
}

function detail(spi: number, text: string): Uint8Array {
  const t = Buffer.from(text.slice(0, TEXT_MAX), "utf8");
  const out = new Uint8Array(3 + t.length);
  out[0] = spi >>> 16;
  out[1] = (spi >>> 8) & 0xff;
  out[2] = spi & 0xff;
  out.set(t, 3);
  return out;
}
