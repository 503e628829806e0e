// What a gateway reports of itself to its controller, in GATEWAY_STATUS (host/backbone/gateway-status.ts):
// its own queues, and the radio signal of each device it holds a session with.
//
// Signal: a packet's RSSI (and LoRa SNR) as the link adapter measured it is put down to the device whose
// session owns the record's SPI (the sessions the gateway reported open), so a device that roams from BLE to
// LoRa keeps one figure; handshake messages are put down to no one. A record on an SPI of no open session is
// held (the last of each such SPI, 1,024 SPIs at most) until its session is reported open: a session is
// reported once its first record is opened, which may be on another thread, after the record came through here.
// It is attributed before the record is authenticated (the device side may run on other threads): a
// transmitter replaying a device's records shows its own signal there. It is a diagnostic; nothing acts on it.
// Per device the last value and a smoothed one (exponential, 1/4 weight to each packet) are kept.
//
// A report goes every `everyMs` when anything in it changed: the queue figures in full, and the devices whose
// last RSSI, SNR or smoothed RSSI changed since they were last reported, at most STATUS_SIGNALS_MAX a report
// (the rest go in the next, oldest change first). After the backbone reconnects (perhaps to another
// controller of the cluster) every device goes again.
import { gatewayStatus, STATUS_SIGNALS_MAX, type DeviceSignal, type GatewayReport } from "../backbone/gateway-status";
import type { GatewayStatus } from "../backbone/frame";
import type { DeviceSide } from "./device-side";
import { LORA } from "./device-side";
import type { RadioSignal } from "./radio-signal";

/** Devices whose signal is kept, at most (the one heard first is forgotten first). */
const SIGNALS_KEPT = 100_000;
/** SPIs of no open session whose last signal is held until one opens, at most. */
const UNCLAIMED_KEPT = 1024;
const SMOOTHING = 0.25;

/** A device's signal: SNR NaN when not known; `sent*` what the last report said of it (NaN: nothing yet). */
type Entry = { device: string; lora: boolean; rssi: number; snr: number; rssiAvg: number; sentLora: boolean; sentRssi: number; sentSnr: number; sentAvg: number };

export class SignalBook {
  private readonly bySpi = new Map<number, string>();
  private readonly devices = new Map<string, Entry>();
  private readonly due = new Set<string>();
  private readonly unclaimed = new Map<number, { link: string; signal: RadioSignal }>();

  opened(device: string, spi: number): void {
    this.bySpi.set(spi, device);
    const u = this.unclaimed.get(spi);
    if (u === undefined) return;
    this.unclaimed.delete(spi);
    this.record(device, u.link, u.signal);
  }

  closed(spi: number): void {
    this.bySpi.delete(spi);
  }

  /** A packet came on `link` with `signal`: put down to its session's device, if it is a record of one. */
  heard(link: string, packet: Uint8Array, signal: RadioSignal): void {
    if (packet.length < 8 || (packet[0] === 0 && packet[1] === 0 && packet[2] === 0)) return;
    const spi = (packet[0] << 16) | (packet[1] << 8) | packet[2];
    const device = this.bySpi.get(spi);
    if (device !== undefined) return this.record(device, link, signal);
    this.unclaimed.delete(spi);
    if (this.unclaimed.size >= UNCLAIMED_KEPT) this.unclaimed.delete(this.unclaimed.keys().next().value as number);
    this.unclaimed.set(spi, { link, signal });
  }

  private record(device: string, link: string, signal: RadioSignal): void {
    let e = this.devices.get(device);
    if (e === undefined) {
      if (this.devices.size >= SIGNALS_KEPT) this.forget(this.devices.keys().next().value as string);
      e = { device, lora: false, rssi: signal.rssi, snr: NaN, rssiAvg: signal.rssi, sentLora: false, sentRssi: NaN, sentSnr: NaN, sentAvg: NaN };
      this.devices.set(device, e);
    }
    e.lora = link === LORA;
    e.rssi = Math.round(signal.rssi);
    e.snr = signal.snr ?? NaN;
    e.rssiAvg += (signal.rssi - e.rssiAvg) * SMOOTHING;
    if (changed(e)) this.due.add(device);
  }

  /** The devices whose signal changed since they were last taken, at most `max`, oldest change first. */
  takeDue(max: number): DeviceSignal[] {
    const out: DeviceSignal[] = [];
    for (const device of this.due) {
      if (out.length >= max) break;
      this.due.delete(device);
      const e = this.devices.get(device);
      if (e === undefined) continue;
      e.sentLora = e.lora;
      e.sentRssi = e.rssi;
      e.sentSnr = e.snr;
      e.sentAvg = Math.round(e.rssiAvg);
      const s: DeviceSignal = { device, link: e.lora ? "lora" : "ble", rssi: e.rssi, rssiAvg: e.sentAvg };
      if (!Number.isNaN(e.snr)) s.snr = e.snr;
      out.push(s);
    }
    return out;
  }

  /** Every device is due again (the controller may know none of them). */
  allDue(): void {
    for (const [device, e] of this.devices) {
      e.sentRssi = NaN;
      this.due.add(device);
    }
  }

  get dueCount(): number {
    return this.due.size;
  }

  private forget(device: string): void {
    this.devices.delete(device);
    this.due.delete(device);
  }
}

/** Whether a report would say something else of the device than the last one did (NaN SNRs equal). */
function changed(e: Entry): boolean {
  const snrSame = e.snr === e.sentSnr || (Number.isNaN(e.snr) && Number.isNaN(e.sentSnr));
  return e.rssi !== e.sentRssi || !snrSame || e.lora !== e.sentLora || Math.round(e.rssiAvg) !== e.sentAvg;
}

export type StatusSources = {
  backbone: () => { messages: number; bytes: number };
  devices: DeviceSide | undefined;
  dropped: () => number;
};

export class StatusReporter {
  readonly signals = new SignalBook();
  private lastAt = -Infinity;
  private lastQueues = "";

  constructor(private readonly src: StatusSources, readonly everyMs: number) {}

  /** The report due at `now`, if one is due and something changed since the last. */
  next(now: number): GatewayStatus | undefined {
    if (now - this.lastAt < this.everyMs) return undefined;
    this.lastAt = now;
    const d = this.src.devices;
    const q = d?.queues() ?? { commands: 0, readings: 0, busiest: [] };
    const figures: Omit<GatewayReport, "signals"> = {
      backbone: this.src.backbone(), commands: q.commands, readings: q.readings, sessions: d?.onlineCount() ?? 0, dropped: this.src.dropped(), queues: q.busiest,
    };
    const text = JSON.stringify(figures);
    if (text === this.lastQueues && this.signals.dueCount === 0) return undefined;
    this.lastQueues = text;
    return gatewayStatus({ ...figures, signals: this.signals.takeDue(STATUS_SIGNALS_MAX) });
  }

  /** The backbone (re)connected: the next report says everything, and goes at the next tick. */
  reconnected(): void {
    this.lastQueues = "";
    this.lastAt = -Infinity;
    this.signals.allDue();
  }
}
