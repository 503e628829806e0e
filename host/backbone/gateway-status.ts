// GATEWAY_STATUS's body (host/backbone/frame.ts, kind 0x10): what a gateway tells its controller of itself,
// every few seconds when something changed: its own queues, and the radio signal of the devices it hears.
//
//   status  = messages (uvarint)   backbone messages to the controller not yet acknowledged by it
//           | bytes (uvarint)      their bytes
//           | commands (uvarint)   commands held for devices (queued, not yet acknowledged by the device)
//           | readings (uvarint)   readings taken in, held until the controller has them durably
//           | sessions (uvarint)   device sessions that can carry data now
//           | dropped (uvarint)    device messages dropped since the gateway started (backbone queue full)
//           | qn (uvarint, <= 16)  then qn times: dlen (uvarint) | device (dlen) | commands (uvarint) | readings (uvarint)
//                                  (the devices with the most held, most first)
//           | sn (uvarint, <= 256) then sn times: dlen (uvarint) | device (dlen) | link (1: 1 BLE, 2 LoRa)
//                                  | rssi (1) | snr (1) (the last packet's, as radio-signal.ts writes a signal)
//                                  | smoothed rssi (1, two's complement dBm)
//
// `device` is the session's peer (a dh kid or a psk device id), as in UPLINK. Nothing may follow the last
// entry. Terminate mode only reports devices and their signal; a relay gateway knows no devices (qn = sn = 0).
import { MAX_ID, uvarintAt, uvarintSize, writeUvarint, KIND_GATEWAY_STATUS, type GatewayStatus } from "./frame";
import { readSignal, SIGNAL_SIZE, writeSignal } from "../gateway/radio-signal";

export const STATUS_QUEUES_MAX = 16;
export const STATUS_SIGNALS_MAX = 256;

export type DeviceQueue = { device: string; commands: number; readings: number };
export type DeviceSignal = { device: string; link: "ble" | "lora"; rssi: number; snr?: number; rssiAvg: number };
export type GatewayReport = {
  backbone: { messages: number; bytes: number };
  commands: number; readings: number; sessions: number; dropped: number;
  queues: DeviceQueue[]; signals: DeviceSignal[];
};

const LINK_BLE = 1, LINK_LORA = 2;

function idBytes(device: string): Buffer {
  const id = Buffer.from(device, "hex");
  if (id.length === 0 || id.length > MAX_ID || id.toString("hex") !== device.toLowerCase()) throw new RangeError(`gateway status: device must be 1..${MAX_ID} bytes in hex`);
  return id;
}

/** The GATEWAY_STATUS message of a report; throws a RangeError for one out of bounds (a caller bug). */
export function gatewayStatus(r: GatewayReport): GatewayStatus {
  if (r.queues.length > STATUS_QUEUES_MAX || r.signals.length > STATUS_SIGNALS_MAX) throw new RangeError(`gateway status: at most ${STATUS_QUEUES_MAX} queues and ${STATUS_SIGNALS_MAX} signals`);
  const counts = [r.backbone.messages, r.backbone.bytes, r.commands, r.readings, r.sessions, r.dropped];
  const queues = r.queues.map((q) => ({ id: idBytes(q.device), q }));
  const signals = r.signals.map((s) => ({ id: idBytes(s.device), s }));
  let size = counts.reduce((a, n) => a + uvarintSize(n), 0) + uvarintSize(queues.length) + uvarintSize(signals.length);
  for (const { id, q } of queues) size += uvarintSize(id.length) + id.length + uvarintSize(q.commands) + uvarintSize(q.readings);
  for (const { id } of signals) size += uvarintSize(id.length) + id.length + 1 + SIGNAL_SIZE + 1;
  const out = new Uint8Array(size);
  let off = 0;
  for (const n of counts) off = writeUvarint(out, off, n);
  off = writeUvarint(out, off, queues.length);
  for (const { id, q } of queues) {
    off = writeUvarint(out, off, id.length);
    out.set(id, off);
    off = writeUvarint(out, off + id.length, q.commands);
    off = writeUvarint(out, off, q.readings);
  }
  off = writeUvarint(out, off, signals.length);
  for (const { id, s } of signals) {
    off = writeUvarint(out, off, id.length);
    out.set(id, off);
    off += id.length;
    out[off++] = s.link === "lora" ? LINK_LORA : LINK_BLE;
    off = writeSignal(out, off, s);
    out[off++] = Math.max(-127, Math.min(127, Math.round(s.rssiAvg))) & 0xff;
  }
  return { kind: KIND_GATEWAY_STATUS, status: out };
}

/** The report in a GATEWAY_STATUS body, or why it is not one (it came from a peer: never thrown). */
export function readGatewayStatus(b: Uint8Array): GatewayReport | string {
  let off = 0;
  const num = (what: string): number => {
    const v = uvarintAt(b, off);
    if (v === undefined) throw new StatusError(`${what}: not a uvarint at byte ${off}`);
    off = v.next;
    return v.value;
  };
  const id = (): string => {
    const n = num("device length");
    if (n === 0 || n > MAX_ID || off + n > b.length) throw new StatusError(`device of ${n} bytes at byte ${off}`);
    off += n;
    return Buffer.from(b.buffer, b.byteOffset + off - n, n).toString("hex");
  };
  try {
    const [messages, bytes, commands, readings, sessions, dropped] = ["messages", "bytes", "commands", "readings", "sessions", "dropped"].map(num);
    const qn = num("queue count");
    if (qn > STATUS_QUEUES_MAX) return `gateway status: ${qn} queues, more than ${STATUS_QUEUES_MAX}`;
    const queues: DeviceQueue[] = [];
    for (let i = 0; i < qn; i++) queues.push({ device: id(), commands: num("commands"), readings: num("readings") });
    const sn = num("signal count");
    if (sn > STATUS_SIGNALS_MAX) return `gateway status: ${sn} signals, more than ${STATUS_SIGNALS_MAX}`;
    const signals: DeviceSignal[] = [];
    for (let i = 0; i < sn; i++) {
      const device = id();
      if (off + 1 + SIGNAL_SIZE + 1 > b.length) return `gateway status: signal truncated at byte ${off}`;
      const link = b[off++];
      if (link !== LINK_BLE && link !== LINK_LORA) return `gateway status: link ${link} at byte ${off - 1}`;
      const sig = readSignal(b, off);
      off += SIGNAL_SIZE;
      const avg = b[off++];
      signals.push({ device, link: link === LINK_LORA ? "lora" : "ble", ...sig, rssiAvg: avg >= 0x80 ? avg - 0x100 : avg });
    }
    if (off !== b.length) return `gateway status: ${b.length - off} bytes after the last entry`;
    return { backbone: { messages, bytes }, commands, readings, sessions, dropped, queues, signals };
  } catch (e) {
    if (e instanceof StatusError) return `gateway status: ${e.message}`;
    throw e;
  }
}

class StatusError extends Error {}
