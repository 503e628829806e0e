// The gateway's device side: every device link (BLE connections, the LoRa channel) feeds packets in; out
// come the applications' readings, each exactly once, and the packets to put back on the links.
//
//   - Handshakes go through the responder table (host/gateway/responders.ts: shape checks, token buckets,
//     bounded half-open state). A BLE connection is its own source; on LoRa, where frames carry no address,
//     each first message is its own source (its bytes are fresh per attempt).
//   - Records find their endpoint by SPI, whatever link they came on: a device that moves from BLE to LoRa
//     keeps its session. The gateway answers on the link it last heard the device on (WireGuard's roaming),
//     and only an authenticated record moves it.
//   - Readings are acknowledged and filtered for copies per device (firmware/runtime/messages.ts), so the
//     application sees each once even across the device's re-handshakes and power cycles; commands go down
//     under the same rules.
//   - The common record (data, current key, confirmed session) takes a host fast path: the header read in
//     place, the replay window, the CCM on the key's reused OpenSSL contexts (host/crypto/ccm.ts), the
//     message straight to the dedup filter. It changes the session exactly as sessionReceive would, and
//     anything else (control records, key changes, old sessions, a failed tag or replay, which the
//     portable path then counts) goes the portable way. Acknowledgements are sealed when the output is
//     taken (takeOutput, poll), one ACK record per device for all its ids due by then.
import { epInput, epPoll, epTakeInbox, epTakeOutput, Endpoint, EndpointConfig, epReady, epSession, EP_OPEN } from "../../firmware/session/endpoint";
import { messageType, MSG_DH_I1, MSG_DH_I2 } from "../../firmware/handshake/wire";
import { FLAG_KEY_PHASE, FORMAT_COMPACT, MAX_LENGTH_COMPACT } from "../../firmware/record/header";
import { replayAccept, replayCheck } from "../../firmware/session/replay";
import { seqTake } from "../../firmware/session/seqstore";
import { addTransport, deleteTransport, RX_CONTROL, RX_DATA, sessionAbort, sessionSend, Session, STATE_OPEN } from "../../firmware/session/session";
import { ReusedCcm } from "../crypto/ccm";
import { compactSeq, openCompact, sealCompact, SealedAhead } from "../record/fast";
import {
  ackCount, encodeAck, messageId, messageKind, MSG_ACK, MSG_DATA, MSG_ID_MAX, Receiver, receiverAccept, receiverNew, Sender, senderAck, senderDue,
  senderNew, senderQueue, senderTakeLost,
} from "../../firmware/runtime/messages";
import { SeqStorage } from "../../firmware/session/seqstore";
import { ResponderLimits, ResponderTable, DEFAULT_LIMITS } from "./responders";
import { MapSweep } from "./sweep";
import { SessionWatch, type DeviceObserver } from "./observer";
import type { KeyLimits } from "../telemetry/metrics";

/** Transport ids inside a device's session, as on the device (firmware/runtime/runtime.ts). */
export const TID_BLE = 1;
export const TID_LORA = 2;

/** Where a packet came from or goes to: a BLE connection ("ble:<address>") or the LoRa channel ("lora"). */
export type LinkAddress = string;
export const LORA: LinkAddress = "lora";

export type Uplink = { device: string; id: number; body: Uint8Array; link: LinkAddress; at: number };
export type DownPacket = { link: LinkAddress; bytes: Uint8Array };

export type DeviceGatewayOptions = {
  /** Responder configuration per handshake mode (a fleet may mix psk and dh devices). */
  config: (mode: "dh" | "psk") => EndpointConfig;
  storage: SeqStorage;
  limits?: ResponderLimits;
  /** Command retransmission: tries and timeout per link kind. */
  commandTries?: number;
  commandRtoMs?: number;
  /**
   * Acknowledge a reading only once confirm() says it is durable further on (the controller has it), not
   * as soon as it is taken in: a device then never sees an ACK for a reading a crash could still lose.
   */
  holdAcks?: boolean;
  /** Handshakes, sessions, rejected records and key use, for telemetry and the session log (./observer.ts). */
  observer?: DeviceObserver;
  /** A command (by the id command() gave it) was acknowledged by its device, or given up after its tries. */
  onCommand?: (device: string, id: number, outcome: "acked" | "lost") => void;
};

type DeviceState = {
  receiver: Receiver; sender: Sender; acks: number[]; ep: Endpoint | undefined; ble: LinkAddress | undefined; last: LinkAddress;
  /** Taken in on the fast path since the output was last taken: drained (ACK sealed) then. */
  due: boolean;
  /** ACKs of one id each sealed ahead (sealAck), how many to seal ahead next, and the last one sent. */
  ahead: SealedAhead | undefined;
  aheadCount: number;
  ackSeq: number;
  ackId: number;
  /** holdAcks: readings taken in and not yet confirmed; true once released (to be taken in again). */
  held: Map<number, boolean> | undefined;
};

/** poll() visits every device within POLL_SPREAD polls (one a second at the gateway's 50 ms), POLL_MIN at least each time. */
const POLL_SPREAD = 20;
const POLL_MIN = 64;
const pollSlice = (size: number) => Math.max(POLL_MIN, Math.ceil(size / POLL_SPREAD));

/** One-id ACKs sealed ahead at most, per device. */
const ACKS_AHEAD = 16;
/** An ACK of one id being sealed, and the ACKs sealed ahead (their bytes are copied). */
const ackScratch = encodeAck([0]);
const acksScratch = new Uint8Array(4 * ACKS_AHEAD);

/** What an SPI leads to; the fast path keeps the session it last saw there with its device, to look them up once. */
type SpiEntry = { ep: Endpoint; source: string; at: number; s?: Session; device?: string; d?: DeviceState };

/** An SPI whose session never confirmed (a replayed or abandoned hello) is forgotten after this long. */
const UNCONFIRMED_MS = 60_000;
/** An SPI of an endpoint its device has moved away from (a new handshake elsewhere) is forgotten after this long. */
const SUPERSEDED_MS = 600_000;

export type DeviceGatewayStats = { packets: number; records: number; unknownSpi: number; malformed: number; uplinks: number; duplicates: number; commandsLost: number };

export class DeviceGateway {
  private readonly tables: { dh: ResponderTable; psk: ResponderTable };
  private readonly bySpi = new Map<number, SpiEntry>();
  private readonly devices = new Map<string, DeviceState>();
  /** poll() visits devices and SPIs a slice at a time. */
  private readonly deviceSweep = new MapSweep(this.devices);
  private readonly spiSweep = new MapSweep(this.bySpi);
  private out: DownPacket[] = [];
  private uplinks: Uplink[] = [];
  /** Devices with a drain due (see DeviceState.due), and the time of the input that made it due last. */
  private readonly due: DeviceState[] = [];
  private dueNow = 0;
  /** A session's device name (its peer in hex), made once per session. */
  private readonly names = new WeakMap<Session, string>();
  private loraSources = 0;
  private readonly watch: SessionWatch | undefined;
  readonly stats: DeviceGatewayStats = { packets: 0, records: 0, unknownSpi: 0, malformed: 0, uplinks: 0, duplicates: 0, commandsLost: 0 };

  constructor(private readonly opts: DeviceGatewayOptions) {
    const limits = opts.limits ?? DEFAULT_LIMITS;
    // Records find their session by SPI alone, so a new session must not take one in use here.
    const config = (mode: "dh" | "psk"): EndpointConfig => {
      const c = opts.config(mode);
      const live = c.spiLive;
      return { ...c, spiLive: (spi) => this.bySpi.has(spi) || live(spi) };
    };
    const o = opts.observer;
    this.tables = {
      dh: new ResponderTable(() => config("dh"), limits, o && ((r) => o.handshake("dh", r))),
      psk: new ResponderTable(() => config("psk"), limits, o && ((r) => o.handshake("psk", r))),
    };
    this.watch = o && new SessionWatch(o);
  }

  /** The live session keys' use of their limits (zero without an observer: nothing is watched). */
  keyLimits(): KeyLimits {
    return this.watch?.keyLimits() ?? { records: 0, forgeries: 0 };
  }

  /** A BLE central connected to a device: in order R the responder speaks first. */
  connected(link: LinkAddress, now: number): void {
    for (const t of [this.tables.dh, this.tables.psk]) this.emit(link, t.connect(link, now));
  }

  /** One packet from a link. Never throws on bad input. */
  input(link: LinkAddress, packet: Uint8Array, now: number): void {
    this.stats.packets++;
    const tid = link === LORA ? TID_LORA : TID_BLE;
    const type = packet.length >= 4 && packet[0] === 0 && packet[1] === 0 && packet[2] === 0 ? messageType(packet) : 0;
    if (type !== 0) {
      const table = type === MSG_DH_I1 || type === MSG_DH_I2 ? this.tables.dh : this.tables.psk;
      const source = link === LORA ? `lora#${this.loraSources++}` : link;
      this.emit(link, table.input(source, packet, tid, now));
      const ep = table.endpoint(source);
      if (ep !== undefined) this.track(ep, source, now);
      return;
    }
    if (packet.length < 8) {
      this.stats.malformed++;
      return;
    }
    const spi = (packet[0] << 16) | (packet[1] << 8) | packet[2];
    const hit = this.bySpi.get(spi);
    if (hit === undefined) {
      this.stats.unknownSpi++;
      return;
    }
    this.stats.records++;
    if (this.fastRecord(hit, spi, packet, link, tid, now)) return;
    const r = epInput(hit.ep, packet, tid, now);
    if (r < 0) this.watch?.rejected(-r);
    const s = epSession(hit.ep);
    if ((r === RX_DATA || r === RX_CONTROL) && s !== undefined) this.heardOn(hit.ep, s, link, tid);
    this.drain(hit.ep, now);
  }

  /**
   * Timers: handshake retries, command retransmissions, acknowledgements, key changes. The ACKs due go at
   * once; the devices' own timers are visited a slice at a time (each device about once a second), so a
   * poll costs the same with ten devices or a hundred thousand, and records waiting behind it wait no
   * longer for a big fleet. Every timer a device has runs in seconds (command RTO 8 s, old key 30 s,
   * rekey an hour), so a second's lateness is within what they allow.
   */
  poll(now: number): void {
    // Devices speak first (order I), so responders have no retries of their own to send.
    for (const t of [this.tables.dh, this.tables.psk]) t.poll(now);
    this.dueNow = now;
    this.drainDue();
    const visited: [string, DeviceState][] = [];
    this.deviceSweep.next(pollSlice(this.devices.size), (device, d) => {
      if (d.ep !== undefined) this.drain(d.ep, now);
      visited.push([device, d]);
    });
    this.watch?.sample(visited, (device) => this.devices.has(device), this.stats);
    this.spiSweep.next(pollSlice(this.bySpi.size), (spi, e) => {
      if (this.stale(spi, e, now)) this.bySpi.delete(spi);
    });
  }

  /**
   * Whether an SPI leads nowhere worth keeping: its endpoint has dropped the session it named, the session
   * ended, it never confirmed within UNCONFIRMED_MS, or its device moved to another endpoint SUPERSEDED_MS
   * ago or more. Without this every handshake would leave an entry behind for good.
   */
  private stale(spi: number, e: SpiEntry, now: number): boolean {
    const ep = e.ep;
    const s = ep.session !== undefined && ep.session.inb.spi === spi ? ep.session : ep.old !== undefined && ep.old.inb.spi === spi ? ep.old : undefined;
    if (s === undefined || s.state !== STATE_OPEN) return true;
    if (!s.confirmed) return now - e.at >= UNCONFIRMED_MS;
    return now - e.at >= SUPERSEDED_MS && this.devices.get(this.nameOf(s))?.ep !== ep;
  }

  /**
   * Queues a command for a device; its message id, or -1 (unknown device, queue full). `id`: the id the
   * controller numbered it with (a copy of one already waiting here is not queued twice); without it, the
   * next of this gateway's own counter.
   */
  command(device: string, body: Uint8Array, now: number, id?: number): number {
    const d = this.devices.get(device);
    if (d === undefined) return -1;
    const taken = id === undefined ? senderQueue(d.sender, this.opts.storage, body, now) : queueAs(d.sender, id, body, now);
    if (d.ep !== undefined) this.drain(d.ep, now);
    return taken;
  }

  /**
   * holdAcks: the reading `id` of `device` is durable; its ACK goes out with the next output. False for a
   * reading not held (already confirmed, or from before the device's state was dropped).
   */
  confirm(device: string, id: number, now: number): boolean {
    const d = this.devices.get(device);
    if (d === undefined || d.held === undefined || !d.held.delete(id)) return false;
    d.acks.push(id);
    this.markDue(d, now);
    return true;
  }

  /**
   * holdAcks: the reading `id` of `device` could not be carried on (the backbone queue was full). It stays
   * unacknowledged, so the device sends it again, and that copy is taken in as new.
   */
  release(device: string, id: number): void {
    const d = this.devices.get(device);
    if (d?.held?.has(id) === true) d.held.set(id, true);
  }

  takeUplinks(): Uplink[] {
    const u = this.uplinks;
    if (u.length === 0) return [];
    this.uplinks = [];
    return u;
  }

  takeOutput(): DownPacket[] {
    this.drainDue();
    const o = this.out;
    if (o.length === 0) return [];
    this.out = [];
    return o;
  }

  /**
   * Ends every session of a device (its peer name in hex), when it is revoked or its keys are rotated: each
   * open session sends the error packet (docs/PROTOCOL.md 3.6) and its SPI is forgotten, so nothing more from
   * it is accepted. Returns how many sessions were ended.
   */
  end(device: string, now: number): number {
    let n = 0;
    const mine = (x: Session | undefined): x is Session => x !== undefined && this.nameOf(x) === device;
    for (const [spi, e] of [...this.bySpi]) {
      const live = [e.ep.session, e.ep.old].filter(mine);
      if (live.length === 0) continue;
      for (const x of live) {
        if (x.state === STATE_OPEN) n++;
        sessionAbort(x);
      }
      this.drain(e.ep, now);
      this.bySpi.delete(spi);
    }
    this.drainDue();
    this.devices.delete(device);
    return n;
  }

  /** Devices with a session that can carry data now. */
  online(): string[] {
    return [...this.devices].filter(([, d]) => d.ep !== undefined && epReady(d.ep)).map(([k]) => k);
  }

  private track(ep: Endpoint, source: string, now: number): void {
    if (ep.session !== undefined) this.bySpi.set(ep.session.inb.spi, { ep, source, at: now });
    if (ep.old !== undefined) this.bySpi.set(ep.old.inb.spi, { ep, source, at: now });
  }

  private stateOf(device: string): DeviceState {
    let d = this.devices.get(device);
    if (d === undefined) {
      const tries = this.opts.commandTries ?? 4, rto = this.opts.commandRtoMs ?? 8000;
      d = { receiver: receiverNew(), sender: senderNew(this.opts.storage, `cmd:${device}`, 16, tries, rto), acks: [], ep: undefined, ble: undefined, last: LORA, due: false,
        ahead: undefined, aheadCount: 1, ackSeq: -2, ackId: -2, held: this.opts.holdAcks === true ? new Map() : undefined,
      };
      this.devices.set(device, d);
    }
    return d;
  }

  /** The device a session belongs to: its peer (kid or device id) in hex. */
  private nameOf(s: Session): string {
    let n = this.names.get(s);
    if (n === undefined) {
      n = Buffer.from(s.peer).toString("hex");
      this.names.set(s, n);
    }
    return n;
  }

  /**
   * A data record for the current key of a confirmed, open session on a datagram link, opened without the
   * portable path's copies; the same changes to the session as epInput -> sessionReceive -> inboundOpen,
   * then what input() and drain() do with RX_DATA, the ACK left for drainDue. False, and nothing changed,
   * for any other record, a replayed one or one whose tag fails: the portable path takes those (and counts them).
   */
  private fastRecord(hit: SpiEntry, spi: number, packet: Uint8Array, link: LinkAddress, tid: number, now: number): boolean {
    const ep = hit.ep;
    const s = ep.session;
    if (s === undefined || ep.old !== undefined || !ep.confirmed || ep.state !== EP_OPEN || ep.work !== undefined || s.state !== STATE_OPEN) return false;
    const inb = s.inb;
    const policy = inb.policy;
    // A retired key opens nothing: the portable path refuses the record and may ask the device again to move on.
    if (inb.spi !== spi || inb.wantRekey || !policy.datagram || policy.suite.format !== FORMAT_COMPACT) return false;
    if (inb.prev !== undefined && now >= inb.prevUntil) return false; // the portable path drops the old key first
    const k = inb.cur;
    const flags = packet[3];
    // Application data under the current key: no control, batch, compression or reserved bits.
    if (flags !== ((k.epoch.index & 1) === 1 ? FLAG_KEY_PHASE : 0)) return false;
    const seq = compactSeq(packet);
    if (!(k.aead instanceof ReusedCcm) || !replayCheck(k.window, seq)) return false;
    const payload = openCompact(k.aead, k.epoch.iv, packet);
    if (payload === undefined) return false;
    replayAccept(k.window, seq);
    s.confirmed = true;
    s.received = s.received + 1;
    if (hit.s !== s) {
      hit.s = s;
      hit.device = this.nameOf(s);
      hit.d = this.stateOf(hit.device);
    }
    const d = hit.d!;
    // heardOn, with the device at hand
    d.ep = ep;
    d.last = link;
    if (tid === TID_BLE) d.ble = link;
    if (s.transports.length === 0 || s.transports[0].id !== tid) this.heardOn(ep, s, link, tid);
    this.take(d, hit.device!, payload, now);
    this.markDue(d, now);
    return true;
  }

  private markDue(d: DeviceState, now: number): void {
    if (!d.due) {
      d.due = true;
      this.due.push(d);
    }
    this.dueNow = now;
  }

  /**
   * Drains the devices the fast path took records for: their ACKs (and anything else due) go out. A device
   * with nothing but ACKs due (the common case) gets them without the general drain's steps, which would
   * find nothing else to do: its endpoint is open and confirmed (no timers), with no handshake output,
   * no inbox and no commands pending.
   */
  private drainDue(): void {
    const now = this.dueNow;
    for (let i = 0; i < this.due.length; i++) {
      const d = this.due[i];
      if (!d.due) continue;
      d.due = false;
      const ep = d.ep;
      if (ep === undefined) continue;
      const s = ep.session;
      if (
        s === undefined || ep.old !== undefined || ep.state !== EP_OPEN || !ep.confirmed || ep.work !== undefined || ep.out.length > 0 ||
        s.state !== STATE_OPEN || s.inbox.length > 0 || s.outbox.length > 0 || d.sender.pending.length > 0 || d.sender.lost.length > 0
      ) {
        this.drain(ep, now);
        continue;
      }
      if (d.acks.length === 1 && this.sendable(s, 4, now)) {
        const id = d.acks.pop()!; // (pop, not length = 0: that would drop the array's storage every time)
        const t = this.route(s); // before sealing, as sessionSend: no route, no sequence number spent
        if (t < 0) continue;
        const rec = this.sealAck(d, s, id);
        // sessionSend's counters; the record goes straight out (the session's outbox was empty: see above)
        s.out.sealed = s.out.sealed + 1;
        s.sent = s.sent + 1;
        this.out.push({ link: t === TID_LORA ? LORA : d.ble ?? d.last, bytes: rec });
        continue;
      }
      while (d.acks.length > 0) if (!this.send(s, encodeAck(d.acks.splice(0, 60)), now)) break;
      const sent = s.outbox;
      if (sent.length === 0) continue;
      s.outbox = [];
      for (let j = 0; j < sent.length; j++) this.out.push({ link: sent[j].transport === TID_LORA ? LORA : d.ble ?? d.last, bytes: sent[j].bytes });
    }
    this.due.length = 0;
  }

  /** An authenticated record came in on `link`: answer there from now on (roaming). */
  private heardOn(ep: Endpoint, s: Session, link: LinkAddress, tid: number): DeviceState {
    const d = this.stateOf(this.nameOf(s));
    d.ep = ep;
    d.last = link;
    if (tid === TID_BLE) d.ble = link;
    if (s.transports.length === 0 || s.transports[0].id !== tid) {
      deleteTransport(s, tid);
      addTransport(s, tid, link);
      // addTransport appends: rotate the new one to the front so routing picks it.
      s.transports.unshift(s.transports.pop()!);
    }
    return d;
  }

  private drain(ep: Endpoint, now: number): void {
    epPoll(ep, now);
    const s = epSession(ep);
    if (s !== undefined) {
      const device = this.nameOf(s);
      const d = this.stateOf(device);
      // Only an authenticated record moves a device to another endpoint (heardOn): a session that is
      // merely established (a replayed hello makes one) must not take its ACKs and commands.
      if (d.ep === undefined) d.ep = ep;
      if (s.inbox.length > 0 || ep.old !== undefined) for (const m of epTakeInbox(ep)) this.take(d, device, m, now);
      if (d.ep === ep && epReady(ep)) {
        while (d.acks.length > 0) {
          // One ACK record carries every id due (up to 60): on LoRa each downlink costs the gateway's duty cycle too.
          if (!this.send(s, encodeAck(d.acks.splice(0, 60)), now)) break;
        }
        if (d.sender.pending.length > 0) for (const m of senderDue(d.sender, now, 4)) this.send(s, m, now);
        if (d.sender.lost.length > 0) this.commandsLost(device, senderTakeLost(d.sender));
      }
    }
    if (ep.out.length === 0 && (s === undefined || s.outbox.length === 0) && (ep.old === undefined || ep.old.outbox.length === 0)) {
      if (ep.session !== undefined && !this.bySpi.has(ep.session.inb.spi)) this.bySpi.set(ep.session.inb.spi, { ep, source: "", at: now });
      return;
    }
    for (const o of epTakeOutput(ep)) {
      const d = s === undefined ? undefined : this.devices.get(this.nameOf(s));
      const link = o.transport === TID_LORA ? LORA : d?.ble ?? d?.last;
      if (link !== undefined) this.out.push({ link, bytes: o.bytes });
    }
    if (ep.session !== undefined && !this.bySpi.has(ep.session.inb.spi)) this.bySpi.set(ep.session.inb.spi, { ep, source: "", at: now });
  }

  /** Whether sessionSend of n bytes may be done on the host path: everything but a key change due, on compact CCM. */
  private sendable(s: Session, n: number, now: number): boolean {
    const o = s.out;
    const policy = o.policy;
    return s.state === STATE_OPEN && o.aead instanceof ReusedCcm && policy.suite.format === FORMAT_COMPACT && n <= MAX_LENGTH_COMPACT &&
      o.spi !== 0 && o.sealed < policy.suite.confidentialityLimit && now - o.startedAt < policy.rekeyAfterMs && o.seq.next <= o.seq.max;
  }

  /** The session's route (sealAndEmit's): its first transport that is up, or -1 (counted unsent). */
  private route(s: Session): number {
    for (let i = 0; i < s.transports.length; i++) if (s.transports[i].up) return s.transports[i].id;
    s.unsent = s.unsent + 1;
    return -1;
  }

  /** After a record was sealed on the host path: sessionSend's counters and queueing. */
  private sent(s: Session, t: number, rec: Uint8Array): void {
    s.out.sealed = s.out.sealed + 1;
    s.sent = s.sent + 1;
    s.outbox.push({ transport: t, bytes: rec });
  }

  /**
   * sessionSend, sealed on the host path when the session allows: the same checks, counters, sequence
   * number and record bytes, on the key's reused CCM contexts. A key change due, or a suite other than
   * compact CCM, goes the portable way.
   */
  private send(s: Session, payload: Uint8Array, now: number): boolean {
    if (!this.sendable(s, payload.length, now)) return sessionSend(s, payload, now);
    const t = this.route(s);
    if (t < 0) return false;
    const o = s.out;
    const seq = seqTake(o.policy.store, o.seq);
    this.sent(s, t, sealCompact(o.aead as ReusedCcm, o.epoch.iv, o.spi, (o.epoch.index & 1) === 1 ? FLAG_KEY_PHASE : 0, seq, payload));
    return true;
  }

  /**
   * The record of send(encodeAck([id])) on a sendable session, its sequence number taken: the ACK of one
   * reading. A device numbers its readings one after the other, and the session its records, so while both
   * go in step the next ACKs are sealed ahead in one batch (SealedAhead: a few native calls for up to
   * ACKS_AHEAD of them), and this one is likely among them.
   */
  private sealAck(d: DeviceState, s: Session, id: number): Uint8Array {
    const o = s.out;
    const aead = o.aead as ReusedCcm;
    const flags = (o.epoch.index & 1) === 1 ? FLAG_KEY_PHASE : 0;
    const seq = o.seq.next; // what seqTake gives next (sendable: not past the maximum)
    const payload = ackScratch;
    payload[1] = (id >>> 16) & 0xff;
    payload[2] = (id >>> 8) & 0xff;
    payload[3] = id & 0xff;
    let rec = d.ahead?.take(aead, o.epoch.iv, o.spi, flags, seq, payload);
    if (rec === undefined) {
      d.aheadCount = seq === d.ackSeq + 1 && id === d.ackId + 1 ? Math.min(ACKS_AHEAD, d.aheadCount * 2) : 1;
      const count = Math.min(d.aheadCount, o.seq.max - seq + 1, MSG_ID_MAX - id + 1);
      if (count > 1 && aead.holdsContexts) {
        const payloads = acksScratch;
        for (let e = 0; e < count; e++) {
          const v = id + e;
          payloads[4 * e] = MSG_ACK;
          payloads[4 * e + 1] = (v >>> 16) & 0xff;
          payloads[4 * e + 2] = (v >>> 8) & 0xff;
          payloads[4 * e + 3] = v & 0xff;
        }
        const ahead = (d.ahead ??= new SealedAhead());
        ahead.seal(aead, o.epoch.iv, o.spi, flags, seq, count, 4, payloads);
        rec = ahead.take(aead, o.epoch.iv, o.spi, flags, seq, payload)!;
      } else {
        rec = sealCompact(aead, o.epoch.iv, o.spi, flags, seq, payload);
      }
    }
    seqTake(o.policy.store, o.seq);
    d.ackSeq = seq;
    d.ackId = id;
    return rec;
  }

  private take(d: DeviceState, device: string, m: Uint8Array, now: number): void {
    const kind = messageKind(m);
    if (kind === MSG_ACK) {
      const told = this.opts.onCommand;
      if (told === undefined) return senderAck(d.sender, m);
      const waiting = new Set(d.sender.pending.map((o) => o.id));
      senderAck(d.sender, m);
      for (let k = 0; k < ackCount(m); k++) {
        const id = messageId(m, k);
        if (waiting.delete(id)) told(device, id, "acked");
      }
    } else if (kind === MSG_DATA) {
      const id = messageId(m, 0);
      let r = receiverAccept(d.receiver, id);
      const held = d.held;
      if (held === undefined) {
        if (r !== 0) d.acks.push(id);
      } else if (r === 1) {
        held.set(id, false);
        if (held.size > 2 * d.receiver.seen.size) this.forgetHeld(d);
      } else if (r === 2 && held.get(id) === true) {
        held.set(id, false); // released: this copy is carried on in its place
        d.receiver.duplicates--;
        r = 1;
      } else if (r === 2 && !held.has(id)) d.acks.push(id); // confirmed before: only its ACK was lost
      if (r === 1) {
        this.stats.uplinks++;
        // dataBody: a copy (a view of a small array would move its bytes off the heap, which costs more)
        this.uplinks.push({ device, id, body: m.slice(1 + 3), link: d.last, at: now });
      } else this.stats.duplicates++;
    } else this.stats.malformed++;
  }

  /**
   * Held readings the receiver window has moved past: a copy of one would be refused as too old anyway,
   * and a device keeps far fewer than a window's worth unacknowledged, so these only wait for a
   * confirmation that is not coming (the controller lost them; the device has given them up).
   */
  private forgetHeld(d: DeviceState): void {
    const w = d.receiver.seen;
    for (const id of d.held!.keys()) if (w.top - id >= w.size) d.held!.delete(id);
  }

  private commandsLost(device: string, ids: number[]): void {
    this.stats.commandsLost += ids.length;
    for (const id of ids) this.opts.onCommand?.(device, id, "lost");
  }

  private emit(link: LinkAddress, out: { transport: number; bytes: Uint8Array }[]): void {
    for (const o of out) this.out.push({ link, bytes: o.bytes });
  }

}

/** senderQueue under the id the controller gave; a command already waiting under it stays as it is. */
function queueAs(s: Sender, id: number, body: Uint8Array, now: number): number {
  if (s.pending.some((o) => o.id === id)) return id;
  if (s.pending.length >= s.limit || id < 0 || id > MSG_ID_MAX) return -1;
  s.pending.push({ id, body, tries: 0, due: now });
  return id;
}
