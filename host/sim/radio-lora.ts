// A LoRa channel in virtual time, as an SX127x fleet and an SX1301-class gateway see it:
//   - each frame is on air for the Semtech air time of its size at its data rate (firmware/link/lora.ts);
//   - uplinks hop at random over the region's three default channels; two frames that overlap in time on one
//     channel at one spreading factor are both lost (no capture effect: the pessimistic case);
//   - radios are half duplex: a board hears nothing while it transmits, nor does the gateway;
//   - each frame is also lost with probability `loss` (fading, interference);
//   - the gateway hears each uplink with an RSSI and SNR for its board's distance (./signal.ts).
// Every transmission is logged, so tests can check the duty cycle and the frame sizes boards really used.
import { airtimeMsCeil, loraFrameAirtimeUs, regionDataRate, Region } from "../../firmware/link/lora";
import type { RadioSignal } from "../gateway/radio-signal";
import { VirtualClock } from "./clock";
import { prng } from "./random";
import { LORA_SIGNAL, SignalModel } from "./signal";

export const UPLINK_CHANNELS = 3;
/** The gateway answers on one downlink channel (EU868 RX2, 869.525 MHz, where the duty cycle is 10 %). */
export const DOWNLINK_CHANNEL = 99;

export type LoraTx = { from: string; start: number; end: number; channel: number; sf: number; bytes: number; lost: boolean };

type Listener = { name: string; hear: (frame: Uint8Array, signal: RadioSignal) => void };

export class LoraChannel {
  readonly log: LoraTx[] = [];
  private readonly onAir: LoraTx[] = [];
  private readonly boards = new Map<string, Listener>();
  private gateway: Listener | undefined;
  private readonly busyUntil = new Map<string, number>();

  constructor(
    private readonly clock: VirtualClock,
    private readonly rand: () => number,
    private readonly loss: number,
    readonly region: Region,
    private readonly signal = new SignalModel(LORA_SIGNAL, prng(0)),
  ) {}

  attachBoard(name: string, hear: (frame: Uint8Array) => void): void {
    this.boards.set(name, { name, hear });
  }

  detachBoard(name: string): void {
    this.boards.delete(name);
  }

  /** The gateway's concentrator: it hears each uplink with its RSSI and SNR. */
  attachGateway(hear: (frame: Uint8Array, signal: RadioSignal) => void): void {
    this.gateway = { name: "gateway", hear };
  }

  /** The air time (ms) of a frame at a data rate. */
  airtimeMs(bytes: number, dr: number): number {
    return airtimeMsCeil(loraFrameAirtimeUs(bytes, dr, this.region));
  }

  /** A board or the gateway keys its radio. Returns the frame's air time (ms). */
  transmit(from: string, frame: Uint8Array, dr: number): number {
    const rate = regionDataRate(dr, this.region);
    if (!rate) throw new Error(`LoRa: ${from} used data rate ${dr}, which ${this.region} does not define`);
    const air = this.airtimeMs(frame.length, dr);
    const uplink = from !== "gateway";
    const tx: LoraTx = {
      from, start: this.clock.now, end: this.clock.now + air, channel: uplink ? Math.floor(this.rand() * UPLINK_CHANNELS) : DOWNLINK_CHANNEL,
      sf: rate.sf, bytes: frame.length, lost: this.rand() < this.loss,
    };
    this.log.push(tx);
    // A collision spoils both frames.
    for (const other of this.onAir) {
      if (other.channel === tx.channel && other.sf === tx.sf && other.end > tx.start) {
        other.lost = true;
        tx.lost = true;
      }
    }
    this.onAir.push(tx);
    this.busyUntil.set(from, tx.end);
    const copy = Uint8Array.from(frame);
    this.clock.at(tx.end, () => {
      this.onAir.splice(this.onAir.indexOf(tx), 1);
      if (tx.lost) return;
      const hearers = uplink ? (this.gateway ? [this.gateway] : []) : [...this.boards.values()];
      for (const h of hearers) if ((this.busyUntil.get(h.name) ?? 0) <= tx.start) h.hear(copy, this.signal.sample(from));
    });
    return air;
  }
}
