// The device runtime: one endpoint (the device's side of its session with the gateway) over the board's
// links, with the reliability layer of firmware/runtime/messages.ts on top. The application sees three
// calls: rtSend (a reading), rtOnCommand, and the lost ids in the report. Everything else is driven by the
// hardware layer's timer and radio callbacks, the same on a board and in the simulator.
//
//   - Transports: BLE is 1, LoRa is 2, and the session prefers BLE while a central is connected. A board
//     that loses BLE carries on over LoRa in the same session, and back (no new handshake): a path probe
//     record on each link change tells the gateway where the device is now.
//   - The handshake starts at boot on LoRa, or when a central connects on BLE; a session that stops being
//     acknowledged (two messages lost in a row) is replaced by a new handshake.
//   - Power cycles: the session is saved to storage once confirmed and after each rekey, and resumed at
//     boot; sequence numbers and message ids come from reservations, so nothing is ever sent twice under
//     one key and nonce, and no id is reused.
import { Bytes, fdiv } from "#target";
import { fromHex, toHex } from "../bytes";
import { Hal } from "../hw/hal";
import { Endpoint, EP_CLOSED, EP_WAIT, epAdopt, epInput, epPoll, epReady, epSession, epStart, epTakeInbox, epTakeOutput } from "../session/endpoint";
import { SaPolicy } from "../session/sa";
import { formatDecimal, parseDecimal } from "../session/seqstore";
import { addTransport, deleteTransport, Session, sessionControl, sessionRestore, sessionSave, sessionSend } from "../session/session";
import { SUITE_CONSTRAINED } from "../suite";
import { deviceEndpoint, Fields, parseFields } from "./config";
import { BleLink, bleLinkChunk, bleLinkNew, bleLinkSend, LoraLink, loraLinkNew, loraLinkPump, loraLinkSend } from "./links";
import {
  ackCount, dataBody, encodeAck, messageId, messageKind, MSG_ACK, MSG_DATA, Receiver, receiverAccept, receiverNew, Sender, senderAck,
  senderDue, senderNew, senderQueue, senderTakeLost,
} from "./messages";

export const TID_BLE = 1;
export const TID_LORA = 2;
/** A control record that says "I am reachable on this link now" (the gateway answers on the last link heard). */
export const CTRL_PATH = 4;
const SAVED_SESSION = "sesame.ses";
const BLE_GRACE_MS = 15000;
/** A psk device's evolved keys ("current,previous" in hex): the configuration's key is only the first. */
const SAVED_PSK = "sesame.psk";

export type Runtime = {
  hal: Hal;
  ep: Endpoint;
  ble: BleLink | undefined;
  lora: LoraLink | undefined;
  sender: Sender;
  receiver: Receiver;
  acks: number[];
  /** The session whose transports were last arranged (a new one needs arranging). */
  arranged: Session | undefined;
  /** The session last saved to storage, and its key indices then (keyIndices). */
  savedSession: Session | undefined;
  saved: string;
  lostInRow: number;
  /** Messages acknowledged (sender.acked) when the current session was adopted: none since means it may be dead at the gateway. */
  ackedAtSession: number;
  onCommand: ((this: void, body: Bytes) => void) | undefined;
  lostIds: number[];
  commands: number;
  restarts: number;
  /** Messages the application handed over (rtSend), whether queued or refused. */
  queued: number;
  /** The identity saved state is bound to ("<id or kid>:"). */
  who: string;
  /** Until then (ms) a board with both radios waits for BLE before it handshakes over LoRa. */
  bleGrace: number;
  /** Timeouts per link, [BLE, LoRa]: a LoRa round trip takes seconds and waits for the duty cycle. */
  rto: number[];
  retry: number[];
};

/**
 * `ms` and up to half as much again, drawn once per boot. LoRa boards share a channel and hear no carrier
 * before they send: boards switched on together, with the same provisioned timeouts, would retry together
 * and collide every time.
 */
function spread(ms: number, hal: Hal): number {
  return SESAME_LORA ? ms + fdiv(ms, 512) * hal.provider.random(1)[0] : ms;
}

function num(f: Fields, k: string, d: number): number {
  const n = f[k] === undefined ? -1 : parseDecimal(f[k]);
  return n < 0 ? d : n;
}

/**
 * A device has one receiving SA, so the only SPI in use is the negotiation SPI (0). A function of its own:
 * an arrow made in rtNew would keep rtNew's whole scope (the parsed configuration) alive on Espruino.
 */
function onlyNegotiation(spi: number): boolean {
  return spi === 0;
}

/**
 * A runtime for the device configuration `conf` (what provisioning hands out: firmware/runtime/config.ts,
 * plus queue, tries, and per link the acknowledgement timeout (rto on BLE, rtolora on LoRa, ms) and the
 * handshake retry (retry, retrylora)). Resumes a saved session if storage holds one.
 */
export function rtNew(hal: Hal, conf: string): Runtime {
  const f = parseFields(conf);
  const policy: SaPolicy = {
    suite: SUITE_CONSTRAINED, p: hal.provider, aead: undefined, rekeyAfterMs: num(f, "rekey", 3600000), datagram: true,
    windowSize: 64, lateKeyMs: 30000, seqBlock: num(f, "block", 16), store: hal.storage,
    // A device compresses its uplinks where its firmware can (the gateway always decompresses).
    codec: hal.codec, compress: hal.codec !== undefined,
  };
  const ep = deviceEndpoint(hal.provider, policy, conf, onlyNegotiation);
  const rt: Runtime = {
    hal: hal, ep: ep, ble: !SESAME_BLE || hal.ble === undefined ? undefined : bleLinkNew(hal.ble, 256),
    lora: !SESAME_LORA || hal.lora === undefined ? undefined : loraLinkNew(hal.lora, 4, hal.clockStepMs),
    sender: senderNew(hal.storage, "sesame.ids", num(f, "queue", 8), num(f, "tries", 4), num(f, "rto", 4000)),
    receiver: receiverNew(), acks: [], arranged: undefined, savedSession: undefined, saved: "", lostInRow: 0, ackedAtSession: 0, onCommand: undefined, lostIds: [], commands: 0,
    restarts: 0, queued: 0, who: "", bleGrace: 0,
    rto: [num(f, "rto", 4000), spread(num(f, "rtolora", 30000), hal)], retry: [num(f, "retry", 5000), spread(num(f, "retrylora", 30000), hal)],
  };
  // Saved state belongs to the identity it was saved under: a board provisioned again starts afresh.
  // The identity and the start of the provisioned key: a rotated key (same id) also starts afresh.
  const key = f["psk"] !== undefined ? f["psk"] : f["secret"] !== undefined ? f["secret"] : "";
  const who = (f["id"] === undefined ? "" : f["id"]) + (f["kid"] === undefined ? "" : f["kid"]) + "/" + key.substring(0, 8) + ":";
  const keys = ep.cfg.pskI === undefined ? undefined : ep.cfg.pskI.keys;
  const psk = mine(hal.storage.read(SAVED_PSK), who);
  if (keys !== undefined && psk !== "") {
    const k = psk.split(",");
    const cur = fromHex(k[0]);
    if (cur !== undefined) {
      keys.current = cur;
      keys.previous = k.length > 1 ? fromHex(k[1]) : undefined;
    }
  }
  const saved = mine(hal.storage.read(SAVED_SESSION), who);
  const s = saved === "" ? undefined : sessionRestore(policy, saved, hal.now());
  if (s !== undefined) {
    epAdopt(ep, s, hal.now());
    rt.savedSession = s;
    rt.saved = keyIndices(s);
  }
  rt.who = who;
  return rt;
}

/** The value saved under identity `who`, or "" when there is none or it belongs to another identity. */
function mine(v: string | undefined, who: string): string {
  if (v === undefined || v.length <= who.length || v.substring(0, who.length) !== who) return "";
  return v.substring(who.length);
}

function live(rt: Runtime): number {
  if (rt.ble !== undefined && rt.ble.up) return TID_BLE;
  return rt.lora !== undefined ? TID_LORA : -1;
}

/** Puts the session on every link the board has, BLE first, each up or down as the link is. */
function arrange(rt: Runtime, s: Session): void {
  deleteTransport(s, TID_BLE);
  deleteTransport(s, TID_LORA);
  if (rt.ble !== undefined) {
    addTransport(s, TID_BLE, "ble");
    s.transports[s.transports.length - 1].up = rt.ble.up;
  }
  if (rt.lora !== undefined) addTransport(s, TID_LORA, "lora");
  rt.arranged = s;
  rt.ackedAtSession = rt.sender.acked;
}

function restart(rt: Runtime, now: number): void {
  const t = live(rt);
  if (t < 0) return;
  rt.ep.transport = t;
  rt.ep.cfg.retryMs = rt.retry[t === TID_LORA ? 1 : 0];
  rt.restarts = rt.restarts + 1;
  epStart(rt.ep, now);
}

/** Boot: hooks the links and the timer, and starts a handshake when there is no session to resume. */
export function rtStart(rt: Runtime, tickMs: number): void {
  const hal = rt.hal;
  if (SESAME_BLE && rt.ble !== undefined) {
    const ble = rt.ble;
    hal.ble!.serve((up: boolean) => rtLink(rt, TID_BLE, up), (chunk: Bytes) => {
      const p = bleLinkChunk(ble, chunk);
      if (p !== undefined) rtPacket(rt, p, TID_BLE);
    });
  }
  if (SESAME_LORA && rt.lora !== undefined) hal.lora!.listen((frame: Bytes) => rtPacket(rt, frame, TID_LORA));
  if (rt.ep.session === undefined) {
    // LoRa air time is scarce (1 % duty cycle): a board that also has BLE gives a central time to connect.
    if (rt.ble !== undefined && rt.lora !== undefined) rt.bleGrace = hal.now() + BLE_GRACE_MS;
    else restart(rt, hal.now());
  }
  hal.every(tickMs, () => rtTick(rt));
}

/** A link came up or went down. */
export function rtLink(rt: Runtime, tid: number, up: boolean): void {
  if (tid === TID_BLE && rt.ble !== undefined) rt.ble.up = up;
  const now = rt.hal.now();
  const s = epSession(rt.ep);
  if (s !== undefined) {
    arrange(rt, s);
    if (up && epReady(rt.ep)) sessionControl(s, CTRL_PATH, now);
  } else if (up) {
    restart(rt, now);
  }
  flush(rt, now);
}

/** One whole packet from a link. */
export function rtPacket(rt: Runtime, packet: Bytes, tid: number): void {
  const now = rt.hal.now();
  epInput(rt.ep, packet, tid, now);
  const inbox = epTakeInbox(rt.ep);
  for (let i = 0; i < inbox.length; i++) take(rt, inbox[i]);
  // The gateway closed the session (CTRL_CLOSE: it could not resume it, docs/PROTOCOL.md 3.8): handshake again at once.
  if (rt.ep.state === EP_CLOSED) restart(rt, now);
  flush(rt, now);
}

function take(rt: Runtime, m: Bytes): void {
  const kind = messageKind(m);
  if (kind === MSG_ACK) {
    if (ackCount(m) > 0) rt.lostInRow = 0;
    senderAck(rt.sender, m);
  } else if (kind === MSG_DATA) {
    const id = messageId(m, 0);
    const r = receiverAccept(rt.receiver, id);
    if (r !== 0) rt.acks.push(id);
    if (r === 1) {
      rt.commands = rt.commands + 1;
      if (rt.onCommand !== undefined) rt.onCommand(dataBody(m));
    }
  }
}

/** Queues an application reading; returns its id, or -1 when it cannot be queued (reported lost at once). */
export function rtSend(rt: Runtime, body: Bytes): number {
  rt.queued = rt.queued + 1;
  const id = senderQueue(rt.sender, rt.hal.storage, body, rt.hal.now());
  if (id < 0) rt.lostIds.push(-1);
  else flush(rt, rt.hal.now());
  return id;
}

/** The timer: handshake timers and X25519 slices, retransmissions, the radio queue. */
export function rtTick(rt: Runtime): void {
  const now = rt.hal.now();
  if (rt.bleGrace > 0 && now >= rt.bleGrace) {
    rt.bleGrace = 0;
    if (rt.ep.session === undefined && rt.ep.state !== EP_WAIT) restart(rt, now);
  }
  epPoll(rt.ep, now);
  flush(rt, now);
}

function flush(rt: Runtime, now: number): void {
  const ep = rt.ep;
  const s = epSession(ep);
  if (s !== undefined && rt.arranged !== s) arrange(rt, s);
  if (epReady(ep) && s !== undefined) {
    if (rt.acks.length > 0) {
      sessionSend(s, encodeAck(rt.acks), now);
      rt.acks = [];
    }
    // On LoRa one message per flush: the duty cycle paces them, a burst would only wait in the radio queue.
    const lora = live(rt) === TID_LORA;
    rt.sender.rtoMs = rt.rto[lora ? 1 : 0];
    const msgs = senderDue(rt.sender, now, lora ? 1 : 4);
    for (let i = 0; i < msgs.length; i++) sessionSend(s, msgs[i], now);
    const lost = senderTakeLost(rt.sender);
    for (let i = 0; i < lost.length; i++) rt.lostIds.push(lost[i]);
    rt.lostInRow = rt.lostInRow + lost.length;
    // A message lost before the session carried any acknowledgement: the gateway most likely never
    // confirmed it (our confirmation was lost, and it forgets an unconfirmed session after a minute), so
    // waiting for a second loss would only lose one more reading.
    if (rt.lostInRow >= 2 || (lost.length > 0 && rt.sender.acked === rt.ackedAtSession)) {
      rt.lostInRow = 0;
      restart(rt, now);
    }
    persist(rt, s);
  }
  const out = epTakeOutput(ep);
  for (let i = 0; i < out.length; i++) {
    const o = out[i];
    if (SESAME_BLE && o.transport === TID_BLE && rt.ble !== undefined) bleLinkSend(rt.ble, o.bytes);
    else if (SESAME_LORA && o.transport === TID_LORA && rt.lora !== undefined) loraLinkSend(rt.lora, o.bytes);
  }
  if (SESAME_LORA && rt.lora !== undefined) loraLinkPump(rt.lora, now);
}

/**
 * Saves a confirmed session when its keys changed (a new session, a rekey): one flash write each time, and
 * a psk device's evolved keys with a new session (overwriting the old key: forward secrecy).
 */
function persist(rt: Runtime, s: Session): void {
  if (!rt.ep.confirmed) return;
  const at = keyIndices(s);
  if (s === rt.savedSession && at === rt.saved) return;
  const keys = rt.ep.cfg.pskI === undefined ? undefined : rt.ep.cfg.pskI.keys;
  if (keys !== undefined) rt.hal.storage.write(SAVED_PSK, rt.who + toHex(keys.current) + (keys.previous === undefined ? "" : "," + toHex(keys.previous)));
  rt.saved = at;
  rt.savedSession = s;
  rt.hal.storage.write(SAVED_SESSION, rt.who + sessionSave(s));
}

/**
 * What sessionSave's text of a session changes with: each direction's key index (a rekey moves the secret
 * on). Compared on every flush instead of the text itself, which a board would build ten times a second.
 */
function keyIndices(s: Session): string {
  return formatDecimal(s.out.epoch.index) + ":" + formatDecimal(s.inb.cur.epoch.index);
}

function pendingIds(rt: Runtime): string {
  const ids: number[] = [];
  for (let i = 0; i < rt.sender.pending.length; i++) ids.push(rt.sender.pending[i].id);
  return ids.join(" ");
}

/** "key=value;..." for the REPL and the simulator: the endpoint, the messages and the links. */
export function rtReport(rt: Runtime): string {
  const ep = rt.ep;
  const s = ep.session;
  const l = rt.lora;
  const lost = rt.lostIds;
  rt.lostIds = [];
  return [
    "state=" + ep.state, "link=" + live(rt), "unsent=" + (s === undefined ? 0 : s.unsent), "handshakes=" + ep.handshakes, "ready=" + (epReady(ep) ? 1 : 0), "epoch=" + (s === undefined ? -1 : s.out.epoch.index),
    "sent=" + (s === undefined ? 0 : s.sent), "acked=" + rt.sender.acked, "pending=" + pendingIds(rt), "lost=" + lost.join(" "),
    "queued=" + rt.queued, "commands=" + rt.commands, "dups=" + rt.receiver.duplicates, "restarts=" + rt.restarts,
    "lora_sent=" + (l === undefined ? 0 : l.sent), "lora_air=" + (l === undefined ? 0 : l.airtimeMs),
    "lora_toobig=" + (l === undefined ? 0 : l.tooBig), "lora_dropped=" + (l === undefined ? 0 : l.dropped),
    "ble_sent=" + (rt.ble === undefined ? 0 : rt.ble.sent),
    "gpcomp=" + (s === undefined ? 0 : s.compressed), "gpcomp_saved=" + (s === undefined ? 0 : s.saved),
  ].join(";");
}
