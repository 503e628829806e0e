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
import { epInput, epPoll, epTakeInbox, epTakeOutput, Endpoint, EndpointConfig, epReady, epSession } from "../../firmware/session/endpoint";
import { messageType, MSG_DH_I1, MSG_DH_I2 } from "../../firmware/handshake/wire";
import { addTransport, deleteTransport, RX_CONTROL, RX_DATA, sessionSend, Session } from "../../firmware/session/session";
import {
  dataBody, encodeAck, messageId, messageKind, MSG_ACK, MSG_DATA, Receiver, receiverAccept, receiverNew, Sender, senderAck, senderDue,
  senderNew, senderQueue, senderTakeLost,
} from "../../firmware/runtime/messages";
import { SeqStorage } from "../../firmware/session/seqstore";
import { ResponderLimits, ResponderTable, DEFAULT_LIMITS } from "./responders";

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
};

type DeviceState = { receiver: Receiver; sender: Sender; acks: number[]; ep: Endpoint | undefined; ble: LinkAddress | undefined; last: LinkAddress };

export type DeviceGatewayStats = { packets: number; records: number; unknownSpi: number; malformed: number; uplinks: number; duplicates: number; commandsLost: number };

export class DeviceGateway {
  private readonly tables: { dh: ResponderTable; psk: ResponderTable };
  private readonly bySpi = new Map<number, { ep: Endpoint; source: string }>();
  private readonly devices = new Map<string, DeviceState>();
  private readonly out: DownPacket[] = [];
  private readonly uplinks: Uplink[] = [];
  private loraSources = 0;
  readonly stats: DeviceGatewayStats = { packets: 0, records: 0, unknownSpi: 0, malformed: 0, uplinks: 0, duplicates: 0, commandsLost: 0 };

  constructor(private readonly opts: DeviceGatewayOptions) {
    const limits = opts.limits ?? DEFAULT_LIMITS;
    this.tables = { dh: new ResponderTable(() => opts.config("dh"), limits), psk: new ResponderTable(() => opts.config("psk"), limits) };
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
      if (ep !== undefined) this.track(ep, source);
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
    const r = epInput(hit.ep, packet, tid, now);
    const s = epSession(hit.ep);
    if ((r === RX_DATA || r === RX_CONTROL) && s !== undefined) this.heardOn(hit.ep, s, link, tid);
    this.drain(hit.ep, now);
  }

  /** Timers: handshake retries, command retransmissions, acknowledgements. */
  poll(now: number): void {
    // Devices speak first (order I), so responders have no retries of their own to send.
    for (const t of [this.tables.dh, this.tables.psk]) t.poll(now);
    for (const d of this.devices.values()) if (d.ep !== undefined) this.drain(d.ep, now);
  }

  /** Queues a command for a device; its message id, or -1 (unknown device, queue full). */
  command(device: string, body: Uint8Array, now: number): number {
    const d = this.devices.get(device);
    if (d === undefined) return -1;
    const id = senderQueue(d.sender, this.opts.storage, body, now);
    if (d.ep !== undefined) this.drain(d.ep, now);
    return id;
  }

  takeUplinks(): Uplink[] {
    return this.uplinks.splice(0);
  }

  takeOutput(): DownPacket[] {
    return this.out.splice(0);
  }

  /** Devices with a session that can carry data now. */
  online(): string[] {
    return [...this.devices].filter(([, d]) => d.ep !== undefined && epReady(d.ep)).map(([k]) => k);
  }

  private track(ep: Endpoint, source: string): void {
    if (ep.session !== undefined) this.bySpi.set(ep.session.inb.spi, { ep, source });
    if (ep.old !== undefined) this.bySpi.set(ep.old.inb.spi, { ep, source });
  }

  private stateOf(device: string): DeviceState {
    let d = this.devices.get(device);
    if (d === undefined) {
      const tries = this.opts.commandTries ?? 4, rto = this.opts.commandRtoMs ?? 8000;
      d = { receiver: receiverNew(), sender: senderNew(this.opts.storage, `cmd:${device}`, 16, tries, rto), acks: [], ep: undefined, ble: undefined, last: LORA };
      this.devices.set(device, d);
    }
    return d;
  }

  /** An authenticated record came in on `link`: answer there from now on (roaming). */
  private heardOn(ep: Endpoint, s: Session, link: LinkAddress, tid: number): void {
    const d = this.stateOf(Buffer.from(s.peer).toString("hex"));
    d.ep = ep;
    d.last = link;
    if (tid === TID_BLE) d.ble = link;
    if (s.transports.length === 0 || s.transports[0].id !== tid) {
      deleteTransport(s, tid);
      addTransport(s, tid, link);
      // addTransport appends: rotate the new one to the front so routing picks it.
      s.transports.unshift(s.transports.pop()!);
    }
  }

  private drain(ep: Endpoint, now: number): void {
    epPoll(ep, now);
    const s = epSession(ep);
    if (s !== undefined) {
      const device = Buffer.from(s.peer).toString("hex");
      const d = this.stateOf(device);
      d.ep = ep;
      for (const m of epTakeInbox(ep)) this.take(d, device, m, now);
      if (epReady(ep)) {
        if (d.acks.length > 0) {
          // One ACK record carries every id due: on LoRa each downlink costs the gateway's duty cycle too.
          sessionSend(s, encodeAck(d.acks.splice(0, 60)), now);
        }
        for (const m of senderDue(d.sender, now, 4)) sessionSend(s, m, now);
        this.stats.commandsLost += senderTakeLost(d.sender).length;
      }
    }
    for (const o of epTakeOutput(ep)) {
      const d = s === undefined ? undefined : this.devices.get(Buffer.from(s.peer).toString("hex"));
      const link = o.transport === TID_LORA ? LORA : d?.ble ?? d?.last;
      if (link !== undefined) this.out.push({ link, bytes: o.bytes });
    }
    if (ep.session !== undefined && !this.bySpi.has(ep.session.inb.spi)) this.bySpi.set(ep.session.inb.spi, { ep, source: "" });
  }

  private take(d: DeviceState, device: string, m: Uint8Array, now: number): void {
    const kind = messageKind(m);
    if (kind === MSG_ACK) senderAck(d.sender, m);
    else if (kind === MSG_DATA) {
      const id = messageId(m, 0);
      const r = receiverAccept(d.receiver, id);
      if (r !== 0) d.acks.push(id);
      if (r === 1) {
        this.stats.uplinks++;
        this.uplinks.push({ device, id, body: dataBody(m), link: d.last, at: now });
      } else this.stats.duplicates++;
    } else this.stats.malformed++;
  }

  private emit(link: LinkAddress, out: { transport: number; bytes: Uint8Array }[]): void {
    for (const o of out) this.out.push({ link, bytes: o.bytes });
  }

}
