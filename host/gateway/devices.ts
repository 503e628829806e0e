// The gateway's device side: every device link (BLE connections, the LoRa channel) feeds packets in; out
// come the applications' readings, each exactly once, and the packets to put back on the links.
//
//   - Handshakes go through the responder table (host/gateway/responders.ts: shape checks, token buckets,
//     bounded half-open state). A BLE connection is its own source; on LoRa, where frames carry no address,
//     each first message is its own source (its bytes are fresh per attempt).
//   - Records find their endpoint by SPI, whatever link they came on: a device that moves from BLE to LoRa
//     keeps its session. The gateway answers on the link it last heard the device on (WireGuard's roaming),
//     and only an authenticated record moves it.
//   - Every record takes the one receive path, the portable one (epInput -> sessionReceive -> inboundOpen:
//     SPI, key phase, replay window, AEAD, counters); on the host its AEAD opens the record in place on
//     the key's reused OpenSSL contexts (host/crypto/ccm.ts, the record layer's Aead.openSeq). What the
//     gateway adds is the device's part (./device-state.ts): the reading is filtered for copies, carried
//     on, and acknowledged. The common case (one reading on a device's current session) is taken straight
//     from the session's inbox; anything else goes through drain(), which looks at everything.
//   - Acknowledgements are sealed when the output is taken (takeOutput, poll), one ACK record per device
//     for all its ids due by then; a device whose ACKs go in step has its next ones sealed ahead in one
//     batch (ReusedCcm.sealAhead), which the session's own seal then hands out (./acks.ts).
import { epAdopt, epInput, epNew, epPoll, epTakeInbox, epTakeOutput, Endpoint, EndpointConfig, epReady, epSession, EP_OPEN } from "../../firmware/session/endpoint";
import { messageType, MSG_DH_I1, MSG_DH_I2 } from "../../firmware/handshake/wire";
import { RX_CONTROL, RX_DATA, sessionAbort, sessionSend, Session, STATE_OPEN } from "../../firmware/session/session";
import { addTransport, deleteTransport } from "../../firmware/session/session";
import { ackCount, messageId, messageKind, MSG_ACK, MSG_DATA, MSG_ID_MAX, type Sender, senderAck, senderDue, senderQueue, senderTakeLost } from "../../firmware/runtime/messages";
import { SeqStorage } from "../../firmware/session/seqstore";
import { sendAcks } from "./acks";
import { confirmReading, DeviceState, deviceNew, READING_NEW, releaseReading, takeReading } from "./device-state";
import { addBusiest, CommandSink, DATA_BODY_AT, DeviceQueues, DeviceRef, DeviceSide, DownPacket, LinkAddress, LORA, UplinkSink } from "./device-side";
import { ResponderLimits, ResponderTable, DEFAULT_LIMITS } from "./responders";
import { MapSweep, pollSlice } from "./sweep";
import { SessionWatch, type DeviceObserver } from "./observer";
import type { HandoffHost, SessionHandoff } from "./session-handoff";
import type { KeyLimits } from "../telemetry/metrics";

export { LORA, type LinkAddress, type DeviceState, type DownPacket, type DeviceRef, type UplinkSink };

/** Transport ids inside a device's session, as on the device (firmware/runtime/runtime.ts). */
export const TID_BLE = 1;
export const TID_LORA = 2;

export type Uplink = { device: string; id: number; body: Uint8Array; link: LinkAddress; at: number };

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
  /**
   * Terminate gateways: sessions handed to the controller as they change, and fetched from it for a record
   * on an unknown SPI (./session-handoff.ts; its storage must be the policy's sequence store).
   */
  handoff?: SessionHandoff;
};


/**
 * What an SPI leads to, and the device of the session the record path last found there (looked up once).
 * `name`: the peer name of the session the SPI is (its device's name), under which spisOf files it.
 */
type SpiEntry = { ep: Endpoint; source: string; at: number; s: Session | undefined; d: DeviceState | undefined; name: string };

/** An SPI whose session never confirmed (a replayed or abandoned hello) is forgotten after this long. */
const UNCONFIRMED_MS = 60_000;
/** An SPI of an endpoint its device has moved away from (a new handshake elsewhere) is forgotten after this long. */
const SUPERSEDED_MS = 600_000;

export type DeviceGatewayStats = { packets: number; records: number; unknownSpi: number; malformed: number; uplinks: number; duplicates: number; commandsLost: number };

export class DeviceGateway implements DeviceSide, HandoffHost {
  private readonly tables: { dh: ResponderTable; psk: ResponderTable };
  private readonly bySpi = new Map<number, SpiEntry>();
  /**
   * Each device's SPIs in bySpi, by name (one number, the common case, or a list): end() finds a device's
   * sessions here, not by a walk over every SPI, which took 1.4 ms a device at 10,000 devices (so a controller
   * rotating every device's keys held the gateway 14 s at 10,000 devices, and the square of the fleet's size
   * for more). A Set per device cost 0.2 KiB a device.
   */
  private readonly spisOf = new Map<string, number | number[]>();
  private readonly devices = new Map<string, DeviceState>();
  /** poll() visits devices and SPIs a slice at a time. */
  private readonly deviceSweep = new MapSweep(this.devices);
  private readonly spiSweep = new MapSweep(this.bySpi);
  private out: DownPacket[] = [];
  private uplinks: Uplink[] = [];
  /** Devices with output due (DeviceState.due), how many, and the time of the input that made one due last. */
  private readonly due: DeviceState[] = [];
  private dueCount = 0;
  private dueNow = 0;
  /** A session's device name (its peer in hex), made once per session. */
  private readonly names = new WeakMap<Session, string>();
  private loraSources = 0;
  private readonly watch: SessionWatch | undefined;
  private readonly deviceOptions;
  /** Where readings go as they are taken in; while unset, they wait for takeUplinks(). */
  onUplink: UplinkSink | undefined;
  /** What became of each command: queued (or refused), acknowledged by its device, or given up after its tries. */
  onCommand: CommandSink | undefined;
  /** (Never called: this side answers synchronously.) */
  onOutput: (() => void) | undefined;
  readonly stats: DeviceGatewayStats = { packets: 0, records: 0, unknownSpi: 0, malformed: 0, uplinks: 0, duplicates: 0, commandsLost: 0 };

  constructor(private readonly opts: DeviceGatewayOptions) {
    const limits = opts.limits ?? DEFAULT_LIMITS;
    // Records find their session by SPI alone, so a new session must not take one in use here. The
    // configuration an endpoint keeps is made once per configuration the owner gives (not per endpoint:
    // a confirmed session's endpoint lives as long as its device).
    const made = new Map<EndpointConfig, EndpointConfig>();
    const config = (mode: "dh" | "psk"): EndpointConfig => {
      const c = opts.config(mode);
      let mine = made.get(c);
      if (mine === undefined) {
        const live = c.spiLive;
        if (made.size >= 8) made.clear();
        made.set(c, (mine = { ...c, spiLive: (spi) => this.bySpi.has(spi) || live(spi) }));
      }
      return mine;
    };
    const o = opts.observer;
    this.tables = {
      dh: new ResponderTable(() => config("dh"), limits, o && ((r) => o.handshake("dh", r))),
      psk: new ResponderTable(() => config("psk"), limits, o && ((r) => o.handshake("psk", r))),
    };
    this.watch = o && new SessionWatch(o);
    this.deviceOptions = { storage: opts.storage, commandTries: opts.commandTries ?? 4, commandRtoMs: opts.commandRtoMs ?? 8000, holdAcks: opts.holdAcks === true };
    this.resumeConfig = config("dh");
    opts.handoff?.use(this.resumeConfig.policy, this);
  }

  private readonly resumeConfig: EndpointConfig;

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
      // Another gateway's session (the device moved here, or this gateway restarted): held while the
      // controller is asked for it.
      if (this.opts.handoff?.unknownRecord(spi, link, packet, now) !== true) this.stats.unknownSpi++;
      return;
    }
    this.stats.records++;
    const ep = hit.ep;
    const r = epInput(ep, packet, tid, now);
    const s = ep.session;
    if (r === RX_DATA && s !== undefined && ep.old === undefined && ep.confirmed && s.inbox.length === 1) {
      // The common record: a reading on the device's current session. Nothing else is due from it.
      const d = this.heardOn(hit, s, link, tid);
      this.take(d, s.inbox.pop()!, now);
      if (d.acks.length > 0) this.markDue(d, now);
      return;
    }
    if (r < 0) this.watch?.rejected(-r);
    const cur = epSession(ep);
    if ((r === RX_DATA || r === RX_CONTROL) && cur !== undefined) this.heardOn(hit, cur, link, tid);
    this.drain(ep, now);
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
    const handoff = this.opts.handoff;
    handoff?.poll(now);
    this.deviceSweep.next(pollSlice(this.devices.size), (device, d) => {
      if (d.ep !== undefined) this.drain(d.ep, now);
      handoff?.check(d.session);
      visited.push([device, d]);
    });
    this.watch?.sample(visited, (device) => this.devices.has(device), this.stats);
    this.spiSweep.next(pollSlice(this.bySpi.size), (spi, e) => {
      if (!this.stale(spi, e, now)) return;
      this.drop(spi);
      handoff?.drop(spi);
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
   * Queues a command for a device: its message id, or -1 (unknown device, queue full), also told to onCommand.
   * `id`: the id the controller numbered it with (a copy of one already waiting here is not queued twice);
   * without it, the next of this gateway's own counter.
   */
  command(device: string, body: Uint8Array, now: number, id?: number): number {
    const d = this.devices.get(device);
    const taken = d === undefined ? -1 : id === undefined ? senderQueue(d.sender, this.opts.storage, body, now) : queueAs(d.sender, id, body, now);
    this.onCommand?.(device, taken >= 0 ? taken : Math.max(0, id ?? 0), taken >= 0 ? "queued" : "refused");
    if (d !== undefined && taken >= 0 && d.ep !== undefined) this.drain(d.ep, now);
    return taken;
  }

  /**
   * holdAcks: the reading `id` of `device` is durable; its ACK goes out with the next output. False for a
   * reading not held (already confirmed, or from before the device's state was dropped).
   */
  confirm(device: string, id: number, now: number): boolean {
    const d = this.devices.get(device);
    return d !== undefined && this.confirmOf(d, id, now);
  }

  /** confirm(), for a device at hand (what an UplinkSink was given: one of this gateway's DeviceStates). */
  confirmOf(ref: DeviceRef, id: number, now: number): boolean {
    const d = ref as DeviceState;
    if (d.ended || !confirmReading(d, id)) return false;
    this.markDue(d, now);
    return true;
  }

  /**
   * holdAcks: the reading `id` of `device` could not be carried on (the backbone queue was full). It stays
   * unacknowledged, so the device sends it again, and that copy is taken in as new.
   */
  release(device: string, id: number): void {
    const d = this.devices.get(device);
    if (d !== undefined) releaseReading(d, id);
  }

  takeUplinks(): Uplink[] {
    const u = this.uplinks;
    if (u.length === 0) return [];
    this.uplinks = [];
    return u;
  }

  /** Whether takeOutput() has packets to give. */
  get hasOutput(): boolean {
    return this.out.length > 0 || this.dueCount > 0;
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
    const spis = this.spisOf.get(device);
    for (const spi of spis === undefined ? [] : typeof spis === "number" ? [spis] : spis.slice()) {
      const e = this.bySpi.get(spi);
      if (e === undefined) continue;
      const live = [e.ep.session, e.ep.old].filter(mine);
      if (live.length === 0) continue;
      for (const x of live) {
        if (x.state === STATE_OPEN) n++;
        sessionAbort(x);
      }
      this.drain(e.ep, now);
      this.drop(spi);
      this.opts.handoff?.drop(spi);
    }
    this.drainDue();
    const d = this.devices.get(device);
    if (d !== undefined) d.ended = true;
    this.devices.delete(device);
    return n;
  }

  /** Devices with a session that can carry data now. */
  online(): string[] {
    return [...this.devices].filter(([, d]) => d.ep !== undefined && epReady(d.ep)).map(([k]) => k);
  }

  queues(): DeviceQueues {
    const q: DeviceQueues = { commands: 0, readings: 0, busiest: [] };
    for (const d of this.devices.values()) {
      const commands = d.sender.pending.length, readings = d.held?.length ?? 0;
      q.commands += commands;
      q.readings += readings;
      addBusiest(q.busiest, { device: d.name, commands, readings });
    }
    return q;
  }

  onlineCount(): number {
    let n = 0;
    for (const d of this.devices.values()) if (d.ep !== undefined && epReady(d.ep)) n++;
    return n;
  }

  /** HandoffHost: a session resumed from the controller's state, held by its SPI; the packets that waited for it go in. */
  adopt(s: Session, link: LinkAddress, packets: Uint8Array[], now: number): void {
    const ep = epNew(this.resumeConfig);
    epAdopt(ep, s, now);
    this.hold(s, ep, "", now);
    for (const p of packets) this.input(link, p, now);
  }

  /** HandoffHost: another gateway holds the session now; its device's state here goes with it. */
  forget(spi: number): void {
    const e = this.bySpi.get(spi);
    if (e === undefined) return;
    this.drop(spi);
    const d = e.d;
    if (d !== undefined && d.ep === e.ep) {
      d.ep = undefined;
      d.session = undefined;
    }
  }

  /** HandoffHost: a packet for a link from outside any held session. */
  send(link: LinkAddress, bytes: Uint8Array): void {
    this.out.push({ link, bytes });
  }

  /** HandoffHost: the session on `spi` may seal again. */
  wake(spi: number, now: number): void {
    const d = this.bySpi.get(spi)?.d;
    if (d !== undefined) this.markDue(d, now);
  }

  private track(ep: Endpoint, source: string, now: number): void {
    if (ep.session !== undefined) this.hold(ep.session, ep, source, now);
    if (ep.old !== undefined) this.hold(ep.old, ep, source, now);
  }

  /** Session s's SPI leads to ep from now on (in place of what it led to). */
  private hold(s: Session, ep: Endpoint, source: string, now: number): void {
    const spi = s.inb.spi;
    this.drop(spi);
    const name = this.nameOf(s);
    this.bySpi.set(spi, { ep, source, at: now, s: undefined, d: undefined, name });
    const spis = this.spisOf.get(name);
    if (spis === undefined) this.spisOf.set(name, spi);
    else if (typeof spis === "number") this.spisOf.set(name, [spis, spi]); // (drop() above took spi out if it was in)
    else spis.push(spi);
  }

  /** Forgets an SPI. */
  private drop(spi: number): void {
    const e = this.bySpi.get(spi);
    if (e === undefined) return;
    this.bySpi.delete(spi);
    const spis = this.spisOf.get(e.name);
    if (spis === spi) this.spisOf.delete(e.name);
    else if (typeof spis === "object") {
      const i = spis.indexOf(spi);
      if (i >= 0) spis.splice(i, 1);
      if (spis.length === 1) this.spisOf.set(e.name, spis[0]);
    }
  }

  private stateOf(device: string): DeviceState {
    let d = this.devices.get(device);
    if (d === undefined) {
      d = deviceNew(device, this.deviceOptions);
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

  /** An authenticated record of session s came in on `link`: its device answers there from now on (roaming). */
  private heardOn(hit: SpiEntry, s: Session, link: LinkAddress, tid: number): DeviceState {
    // (An SPI's entry goes when its device is ended, so the device it found stays the session's.)
    if (hit.s !== s || hit.d === undefined) {
      hit.s = s;
      hit.d = this.stateOf(this.nameOf(s));
      const h = this.opts.handoff?.seen(s);
      if (h !== undefined) hit.d.handed = h;
    }
    const d = hit.d;
    d.ep = hit.ep;
    d.session = s;
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

  private markDue(d: DeviceState, now: number): void {
    if (!d.due) {
      d.due = true;
      this.due[this.dueCount++] = d;
    }
    this.dueNow = now;
  }

  /** Drains the devices with output due: their ACKs (and anything else due) go out. */
  private drainDue(): void {
    const now = this.dueNow;
    for (let i = 0; i < this.dueCount; i++) {
      const d = this.due[i];
      this.due[i] = undefined!;
      if (!d.due) continue;
      d.due = false;
      const ep = d.ep;
      if (ep === undefined) continue;
      const s = ep.session;
      // A device with only ACKs to send on its current session (the common case) gets them without the
      // look-ups and the endpoint-wide steps of drain(), which would find nothing else to do.
      if (s !== undefined && this.opts.handoff?.maySeal(s, d.handed) === false) continue; // woken by the grant
      if (s !== undefined && s === d.session && ep.old === undefined && ep.state === EP_OPEN && ep.confirmed && ep.work === undefined && ep.out.length === 0 && s.inbox.length === 0) {
        sendAcks(d, s, now);
        if (d.sender.pending.length > 0 || d.sender.lost.length > 0) this.drain(ep, now);
        else this.output(d, s);
      } else this.drain(ep, now);
    }
    this.dueCount = 0;
  }

  /** The session's records, to the device's links (its outbox emptied without giving up its storage). */
  private output(d: DeviceState, s: Session): void {
    const box = s.outbox;
    for (let i = 0; i < box.length; i++) this.out.push({ link: box[i].transport === TID_LORA ? LORA : d.ble ?? d.last, bytes: box[i].bytes });
    while (box.length > 0) box.pop();
  }

  /** Everything an endpoint has to do now: timers, its inbox, ACKs, commands, and its packets to the links. */
  private drain(ep: Endpoint, now: number): void {
    if (ep.state !== EP_OPEN || !ep.confirmed || ep.work !== undefined) epPoll(ep, now); // an open, confirmed endpoint has no timers
    const s = epSession(ep);
    let d: DeviceState | undefined;
    if (s !== undefined) {
      const device = this.nameOf(s);
      d = this.stateOf(device);
      // Only an authenticated record moves a device to another endpoint (heardOn): a session that is
      // merely established (a replayed hello makes one) must not take its ACKs and commands.
      if (d.ep === undefined) d.ep = ep;
      if (s.inbox.length > 0 || ep.old !== undefined) for (const m of epTakeInbox(ep)) this.take(d, m, now);
      if (d.ep === ep && epReady(ep) && this.opts.handoff?.maySeal(s, d.handed) !== false) {
        sendAcks(d, s, now);
        if (d.sender.pending.length > 0) for (const m of senderDue(d.sender, now, 4)) sessionSend(s, m, now);
        if (d.sender.lost.length > 0) this.commandsLost(d.name, senderTakeLost(d.sender));
      }
    }
    if (ep.out.length > 0 || (s !== undefined && s.outbox.length > 0) || (ep.old !== undefined && ep.old.outbox.length > 0)) {
      for (const o of epTakeOutput(ep)) {
        const link = o.transport === TID_LORA ? LORA : d?.ble ?? d?.last;
        if (link !== undefined) this.out.push({ link, bytes: o.bytes });
      }
    }
    if (ep.session !== undefined && !this.bySpi.has(ep.session.inb.spi)) this.hold(ep.session, ep, "", now);
  }

  /** A message from a device: a reading taken in (its id returned, when it is new and carried on), or an ACK of a command. */
  private take(d: DeviceState, m: Uint8Array, now: number): number {
    const kind = messageKind(m);
    if (kind === MSG_ACK) {
      const told = this.onCommand;
      if (told === undefined) {
        senderAck(d.sender, m);
        return -1;
      }
      const waiting = new Set(d.sender.pending.map((o) => o.id));
      senderAck(d.sender, m);
      for (let k = 0; k < ackCount(m); k++) {
        const id = messageId(m, k);
        if (waiting.delete(id)) told(d.name, id, "acked");
      }
    } else if (kind === MSG_DATA) {
      const id = messageId(m, 0);
      if (takeReading(d, id) !== READING_NEW) {
        this.stats.duplicates++;
        return -1;
      }
      this.stats.uplinks++;
      const sink = this.onUplink;
      if (sink === undefined) {
        // a copy (a view of a small array would move its bytes off the heap, which costs more)
        this.uplinks.push({ device: d.name, id, body: m.slice(DATA_BODY_AT), link: d.last, at: now });
      } else if (!sink(d, id, m, DATA_BODY_AT, m.length - DATA_BODY_AT, now)) {
        releaseReading(d, id);
        return -1;
      }
      return id;
    } else this.stats.malformed++;
    return -1;
  }

  private commandsLost(device: string, ids: number[]): void {
    this.stats.commandsLost += ids.length;
    for (const id of ids) this.onCommand?.(device, id, "lost");
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
