// The backbone message codec: what the gateway and the controller say to each other inside the records of
// their extreme-format session. A record's whole payload is a batch (the record carries FLAG_BATCH): zero
// or more messages back to back, each one length-prefixed, so one AEAD call covers thousands of device
// messages. An empty batch is a keepalive.
//
//   batch   = message*
//   message = kind (1 byte) | len (uvarint) | body (len bytes)
//
//   kind  name           body
//   ----  -------------  -----------------------------------------------------------------------------
//   0x01  UPLINK         dlen (uvarint) | device (dlen) | payload (rest)      terminate mode, gw -> ctl
//   0x02  DOWNLINK       dlen (uvarint) | device (dlen) | payload (rest)      terminate mode, ctl -> gw: a
//                        command, payload = id (3, the controller's per-device number) | the command
//   0x03  RELAY_UP       slen (uvarint) | source (slen) | spdu (rest)         relay mode: the device's
//   0x04  RELAY_DOWN     slen (uvarint) | source (slen) | spdu (rest)         record, still sealed
//   0x05  SESSION_EVENT  dlen (uvarint) | device (dlen) | event (1) | detail (rest)   terminate mode, gw -> ctl:
//                        a device session confirmed or ended, for the session log, or what became of a
//                        command (queued under a message id, acknowledged, lost) (detail: session-event.ts)
//   0x06  ACK            taken (uvarint), nothing after it
//   0x07  HELLO          run (8) | next (uvarint) | peerRun (8) | taken (uvarint), nothing after
//   0x08  KEYS           dlen (uvarint) | device (dlen) | grant (rest)        terminate mode, ctl -> gw: the
//                        device's handshake keys as "mode=psk;current=<hex>;previous=<hex>" or
//                        "mode=dh;public=<hex>"; an empty grant withdraws them (revoked, rotated)
//   0x09  KEYS_EVOLVED   dlen (uvarint) | device (dlen) | "current=<hex>;previous=<hex>"   gw -> ctl: a psk
//                        device's keys moved on with a confirmed session; the controller stores them
//   0x0A  SESSION_STATE  dlen (uvarint) | device (dlen) | state text (rest)   gw -> ctl: a device session's
//                        keys, sequence reservation and replay top, handed over as they change
//   0x0B  SESSION_FETCH  dlen (uvarint) | spi (3) | nothing                   gw -> ctl: a record came on an
//                        SPI this gateway does not hold: the state to resume it, if any
//   0x0C  SESSION_ANSWER dlen (uvarint) | spi (3) | answer text (rest)        ctl -> gw: to either of the two
//                        above (host/gateway/session-handoff.ts, docs/PROTOCOL.md 7)
//   0x10  GATEWAY_STATUS status (the whole body)                              gw -> ctl, every few seconds
//                        when something changed: the gateway's own queues and the devices whose RSSI
//                        moved (body: gateway-status.ts)
//
// uvarint: unsigned LEB128 (7 bits a byte, least significant group first, high bit = more), in its
// shortest form only, at most 2^53 - 1 (8 bytes), so every value has exactly one encoding and fits a JS
// number. `device` / `source` are opaque ids of at most MAX_ID bytes (a device's kid, a link address);
// a body is at most MAX_BODY bytes. SESSION_EVENT's event is SESSION_OPENED, SESSION_CLOSED or COMMAND_STATE.
//
// Every message but ACK and HELLO is "counted": the sender numbers them 0, 1, 2... per run (one run = one
// process's queue), HELLO says which number the next counted message on this connection has, and ACK /
// HELLO's `taken` say how many the receiver has durably taken (all numbers below it). See reliable.ts.
//
// Decoding never throws: malformed input yields a FrameError with a code and the offset where it broke.
// Decoded ids and payloads are views into the batch buffer (no copies).

export const KIND_UPLINK = 0x01;
export const KIND_DOWNLINK = 0x02;
export const KIND_RELAY_UP = 0x03;
export const KIND_RELAY_DOWN = 0x04;
export const KIND_SESSION_EVENT = 0x05;
export const KIND_ACK = 0x06;
export const KIND_HELLO = 0x07;
export const KIND_KEYS = 0x08;
export const KIND_KEYS_EVOLVED = 0x09;
export const KIND_SESSION_STATE = 0x0a;
export const KIND_SESSION_FETCH = 0x0b;
export const KIND_SESSION_ANSWER = 0x0c;
const KIND_MAX = KIND_SESSION_ANSWER;

export const SESSION_OPENED = 1;
export const SESSION_CLOSED = 2;
export const COMMAND_STATE = 3;
const knownEvent = (e: number) => e === SESSION_OPENED || e === SESSION_CLOSED || e === COMMAND_STATE;

/** A gateway's report of itself: kinds from 0x10 on lie outside the contiguous range above. */
export const KIND_GATEWAY_STATUS = 0x10;
/** 0x01..KIND_MAX, and GATEWAY_STATUS. */
const knownKind = (k: number) => (k >= KIND_UPLINK && k <= KIND_MAX) || k === KIND_GATEWAY_STATUS;

/** Longest device id / link address. */
export const MAX_ID = 255;
/** Longest message body: a 16 MiB payload plus its id and prefixes. */
export const MAX_BODY = (16 << 20) + 1024;
/** Bytes in a HELLO run id. */
export const RUN_SIZE = 8;
/** Largest uvarint value (and so the largest message number or count). */
export const MAX_UVARINT = Number.MAX_SAFE_INTEGER;

export type Uplink = { kind: typeof KIND_UPLINK; device: Uint8Array; payload: Uint8Array };
export type Keys = { kind: typeof KIND_KEYS | typeof KIND_KEYS_EVOLVED; device: Uint8Array; payload: Uint8Array };
/** Session handoff (0x0A-0x0C): `device` is the peer (SESSION_STATE) or the SPI in 3 bytes (FETCH, ANSWER). */
export type Handoff = { kind: typeof KIND_SESSION_STATE | typeof KIND_SESSION_FETCH | typeof KIND_SESSION_ANSWER; device: Uint8Array; payload: Uint8Array };
export type Downlink = { kind: typeof KIND_DOWNLINK; device: Uint8Array; payload: Uint8Array };
export type RelayUp = { kind: typeof KIND_RELAY_UP; source: Uint8Array; spdu: Uint8Array };
export type RelayDown = { kind: typeof KIND_RELAY_DOWN; source: Uint8Array; spdu: Uint8Array };
export type SessionEvent = { kind: typeof KIND_SESSION_EVENT; device: Uint8Array; event: number; detail: Uint8Array };
export type Ack = { kind: typeof KIND_ACK; taken: number };
export type Hello = { kind: typeof KIND_HELLO; run: Uint8Array; next: number; peerRun: Uint8Array; taken: number };
export type GatewayStatus = { kind: typeof KIND_GATEWAY_STATUS; status: Uint8Array };

/** The messages the application sends and receives (numbered and acknowledged by the link). */
export type AppMessage = Uplink | Downlink | RelayUp | RelayDown | SessionEvent | Keys | Handoff | GatewayStatus;
export type Message = AppMessage | Ack | Hello;

export const FRAME_TRUNCATED = 1; // the batch ends inside a message
export const FRAME_VARINT = 2; // a uvarint that is not in shortest form, or above MAX_UVARINT
export const FRAME_KIND = 3; // an unknown message kind
export const FRAME_LENGTH = 4; // a body or id longer than its limit, or an id running past its body
export const FRAME_TRAILING = 5; // bytes left over in a fixed-size body (ACK, HELLO)
export const FRAME_EVENT = 6; // an unknown SESSION_EVENT event
const FRAME_NAMES = ["", "truncated", "varint", "kind", "length", "trailing", "event"];

/** Why a batch did not decode. Returned, never thrown. */
export class FrameError {
  constructor(readonly code: number, readonly offset: number) {}
  get name(): string { return FRAME_NAMES[this.code] ?? "unknown"; }
  toString(): string { return `backbone frame: ${this.name} at byte ${this.offset}`; }
}

export function isAppMessage(m: Message): m is AppMessage {
  return m.kind !== KIND_ACK && m.kind !== KIND_HELLO;
}

// ---- uvarint -----------------------------------------------------------------------------------------------

export function uvarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

export function writeUvarint(out: Uint8Array, off: number, n: number): number {
  while (n >= 0x80) {
    out[off++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[off++] = n;
  return off;
}

/** The decoder's cursor: `err` is set (and stays) once something was malformed. */
type Cursor = { b: Uint8Array; off: number; err: FrameError | undefined };

function readUvarint(c: Cursor, end: number): number {
  let v = 0;
  let scale = 1;
  const start = c.off;
  for (let i = 0; i < 8; i++) {
    if (c.off >= end) return fail(c, FRAME_TRUNCATED, c.off);
    const byte = c.b[c.off++];
    v += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      // Shortest form: a final group of 0 is only allowed as the whole encoding of 0.
      if (byte === 0 && i > 0) return fail(c, FRAME_VARINT, start);
      return v > MAX_UVARINT ? fail(c, FRAME_VARINT, start) : v;
    }
    scale *= 128;
  }
  return fail(c, FRAME_VARINT, start);
}

/** The uvarint at b[off] and the offset after it, or undefined where there is none (truncated, not shortest, too big). */
export function uvarintAt(b: Uint8Array, off: number): { value: number; next: number } | undefined {
  const c: Cursor = { b, off, err: undefined };
  const value = readUvarint(c, b.length);
  return c.err === undefined ? { value, next: c.off } : undefined;
}

function fail(c: Cursor, code: number, offset: number): number {
  if (c.err === undefined) c.err = new FrameError(code, offset);
  return -1;
}

// ---- sizes and encoding ----------------------------------------------------------------------------------------

function idOf(m: AppMessage): Uint8Array {
  if (m.kind === KIND_GATEWAY_STATUS) return EMPTY;
  return m.kind === KIND_RELAY_UP || m.kind === KIND_RELAY_DOWN ? m.source : m.device;
}

function dataOf(m: AppMessage): Uint8Array {
  if (m.kind === KIND_RELAY_UP || m.kind === KIND_RELAY_DOWN) return m.spdu;
  if (m.kind === KIND_SESSION_EVENT) return m.detail;
  if (m.kind === KIND_GATEWAY_STATUS) return m.status;
  return m.payload;
}

/** The body's length (what `len` says). */
export function bodySize(m: Message): number {
  if (m.kind === KIND_ACK) return uvarintSize(m.taken);
  if (m.kind === KIND_HELLO) return RUN_SIZE + uvarintSize(m.next) + RUN_SIZE + uvarintSize(m.taken);
  if (m.kind === KIND_GATEWAY_STATUS) return m.status.length;
  const id = idOf(m).length;
  return uvarintSize(id) + id + (m.kind === KIND_SESSION_EVENT ? 1 : 0) + dataOf(m).length;
}

/** Bytes the message takes in a batch. */
export function messageSize(m: Message): number {
  const body = bodySize(m);
  return 1 + uvarintSize(body) + body;
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The message's body size, or why it cannot be encoded. */
function check(m: Message): number | string {
  if (m.kind === KIND_ACK) return isCount(m.taken) ? bodySize(m) : "ACK taken must be a safe non-negative integer";
  if (m.kind === KIND_HELLO) {
    if (m.run.length !== RUN_SIZE || m.peerRun.length !== RUN_SIZE) return `HELLO run ids are ${RUN_SIZE} bytes`;
    return isCount(m.next) && isCount(m.taken) ? bodySize(m) : "HELLO counts must be safe non-negative integers";
  }
  if (!knownKind(m.kind)) return `unknown message kind ${(m as Message).kind}`;
  if (idOf(m).length > MAX_ID) return `ids are at most ${MAX_ID} bytes`;
  if (m.kind === KIND_SESSION_EVENT && !knownEvent(m.event)) return `unknown session event ${m.event}`;
  const body = bodySize(m);
  return body > MAX_BODY ? `a message body is at most ${MAX_BODY} bytes` : body;
}

/** Why a message cannot be encoded (a caller bug), or undefined when it can. */
export function checkMessage(m: Message): string | undefined {
  const r = check(m);
  return typeof r === "string" ? r : undefined;
}

/** The body size of a message that can be encoded; throws a RangeError (a caller bug) for one that cannot. */
export function checkedBodySize(m: Message): number {
  const r = check(m);
  if (typeof r === "string") throw new RangeError(r);
  return r;
}

/**
 * Writes everything of the message but the bulk bytes of its payload/spdu/detail (the caller appends those,
 * copied or spliced in as their own chunk); returns the offset after what it wrote. `body` is bodySize(m).
 */
export function writeMessageHead(m: Message, out: Uint8Array, off: number, body = bodySize(m)): number {
  out[off++] = m.kind;
  off = writeUvarint(out, off, body);
  if (m.kind === KIND_ACK) return writeUvarint(out, off, m.taken);
  if (m.kind === KIND_HELLO) {
    out.set(m.run, off);
    off = writeUvarint(out, off + RUN_SIZE, m.next);
    out.set(m.peerRun, off);
    return writeUvarint(out, off + RUN_SIZE, m.taken);
  }
  if (m.kind === KIND_GATEWAY_STATUS) return off;
  const id = idOf(m);
  off = writeUvarint(out, off, id.length);
  off = putBytes(out, off, id);
  if (m.kind === KIND_SESSION_EVENT) out[off++] = m.event;
  return off;
}

/**
 * Copies src into out at off; returns the offset after it. Short runs (ids, device readings) go byte by
 * byte: a typed array's set() costs more than the copy itself for a few dozen bytes.
 */
export function putBytes(out: Uint8Array, off: number, src: Uint8Array): number {
  const n = src.length;
  if (n > 64) out.set(src, off);
  else for (let i = 0; i < n; i++) out[off + i] = src[i];
  return off + n;
}

/** The bytes writeMessageHead leaves for the caller to append (empty for ACK and HELLO). */
export function messageTail(m: Message): Uint8Array {
  return isAppMessage(m) ? dataOf(m) : EMPTY;
}

const EMPTY = new Uint8Array(0);

/** b[start, end) as a plain Uint8Array view (cheaper to make than a Buffer's subarray). */
function view(b: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset + start, end - start);
}

/** One batch in one buffer; throws a RangeError for a message checkMessage refuses. */
export function encodeBatch(ms: readonly Message[]): Buffer {
  let size = 0;
  for (const m of ms) {
    const body = checkedBodySize(m);
    size += 1 + uvarintSize(body) + body;
  }
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const m of ms) {
    off = writeMessageHead(m, out, off);
    const tail = messageTail(m);
    out.set(tail, off);
    off += tail.length;
  }
  return out;
}

// ---- decoding ----------------------------------------------------------------------------------------------

function readId(c: Cursor, end: number): Uint8Array {
  const n = readUvarint(c, end);
  if (c.err !== undefined) return EMPTY;
  if (n > MAX_ID || n > end - c.off) {
    fail(c, FRAME_LENGTH, c.off);
    return EMPTY;
  }
  const id = view(c.b, c.off, c.off + n);
  c.off += n;
  return id;
}

function readMessage(c: Cursor): Message | undefined {
  const at = c.off;
  const kind = c.b[c.off++];
  if (!knownKind(kind)) return void fail(c, FRAME_KIND, at);
  const len = readUvarint(c, c.b.length);
  if (c.err !== undefined) return undefined;
  if (len > MAX_BODY) return void fail(c, FRAME_LENGTH, at);
  const end = c.off + len;
  if (end > c.b.length) return void fail(c, FRAME_TRUNCATED, at);
  let m: Message;
  if (kind === KIND_ACK) {
    m = { kind, taken: readUvarint(c, end) };
  } else if (kind === KIND_HELLO) {
    if (end - c.off < RUN_SIZE) return void fail(c, FRAME_TRUNCATED, c.off);
    const run = view(c.b, c.off, (c.off += RUN_SIZE));
    const next = readUvarint(c, end);
    if (c.err !== undefined) return undefined;
    if (end - c.off < RUN_SIZE) return void fail(c, FRAME_TRUNCATED, c.off);
    const peerRun = view(c.b, c.off, (c.off += RUN_SIZE));
    m = { kind, run, next, peerRun, taken: readUvarint(c, end) };
  } else if (kind === KIND_GATEWAY_STATUS) {
    m = { kind, status: view(c.b, c.off, end) };
    c.off = end;
  } else {
    const id = readId(c, end);
    if (c.err !== undefined) return undefined;
    if (kind === KIND_SESSION_EVENT) {
      if (c.off >= end) return void fail(c, FRAME_TRUNCATED, c.off);
      const event = c.b[c.off++];
      if (!knownEvent(event)) return void fail(c, FRAME_EVENT, c.off - 1);
      m = { kind, device: id, event, detail: view(c.b, c.off, end) };
    } else if (kind === KIND_RELAY_UP || kind === KIND_RELAY_DOWN) {
      m = { kind, source: id, spdu: view(c.b, c.off, end) };
    } else {
      m = { kind: kind as typeof KIND_UPLINK | typeof KIND_KEYS, device: id, payload: view(c.b, c.off, end) } as Message;
    }
    c.off = end;
  }
  if (c.err !== undefined) return undefined;
  if (c.off !== end) return void fail(c, FRAME_TRAILING, c.off);
  return m;
}

/** Bytes needed to tell a message's size (kind, and a uvarint of at most 8 bytes). */
export const MESSAGE_PREFIX_MAX = 9;

/**
 * The size of the message that starts at b[0], from its first bytes: 0 while b is too short to tell (all
 * of MESSAGE_PREFIX_MAX bytes, or the whole rest of the batch, is always enough), or a FrameError.
 */
export function messageExtent(b: Uint8Array): number | FrameError {
  if (b.length === 0) return 0;
  if (!knownKind(b[0])) return new FrameError(FRAME_KIND, 0);
  const c: Cursor = { b, off: 1, err: undefined };
  const len = readUvarint(c, b.length);
  if (c.err !== undefined) return c.err.code === FRAME_TRUNCATED ? 0 : c.err;
  if (len > MAX_BODY) return new FrameError(FRAME_LENGTH, 0);
  return c.off + len;
}

/** Decodes exactly one message that fills b (as messageExtent measured it). */
export function decodeMessage(b: Uint8Array): Message | FrameError {
  const c: Cursor = { b, off: 0, err: undefined };
  const m = readMessage(c);
  if (m === undefined) return c.err ?? new FrameError(FRAME_TRUNCATED, 0);
  return c.off === b.length ? m : new FrameError(FRAME_TRAILING, c.off);
}

/**
 * Decodes the complete messages of b from `off` on into `out`; returns the offset where it stopped (b.length,
 * or the start of a message that runs past b's end), or the FrameError of a malformed one.
 */
export function decodeComplete(b: Uint8Array, off: number, out: Message[]): number | FrameError {
  const c: Cursor = { b, off, err: undefined };
  while (c.off < b.length) {
    const start = c.off;
    if (!knownKind(b[start])) return new FrameError(FRAME_KIND, start);
    c.off = start + 1;
    const len = readUvarint(c, b.length);
    if (c.err !== undefined) return c.err.code === FRAME_TRUNCATED ? start : c.err;
    if (len > MAX_BODY) return new FrameError(FRAME_LENGTH, start);
    if (c.off + len > b.length) return start;
    c.off = start;
    const m = readMessage(c);
    if (m === undefined) return c.err ?? new FrameError(FRAME_TRUNCATED, start);
    out.push(m);
  }
  return c.off;
}

/** The messages of a batch, or the FrameError that stopped it (then none of them is delivered). */
export function decodeBatch(b: Uint8Array): Message[] | FrameError {
  const out: Message[] = [];
  const end = decodeComplete(b, 0, out);
  if (end instanceof FrameError) return end;
  return end === b.length ? out : new FrameError(FRAME_TRUNCATED, end);
}
