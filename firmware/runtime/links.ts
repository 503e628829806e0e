// The device's two links as the runtime drives them: BLE carries each packet in MTU-sized GATT chunks;
// LoRa carries each packet as one raw frame, only if it fits the data rate, only when the regional duty
// cycle allows it, and one at a time (the radio is busy for the frame's air time). Frames wait in a short
// queue; when it is full the oldest is dropped (and counted): stale records are worth less than new ones.
import { Bytes } from "#target";
import { BleHw, LoraHw } from "../hw/hal";
import { bleAccept, bleFragment, BleReassembler, bleReassemblerNew } from "../link/ble";
import { airtimeMsCeil, DutyCycle, dutyAllows, dutyNew, dutyRecord, loraFrameAirtimeUs, regionDataRate, Region } from "../link/lora";

export type BleLink = { hw: BleHw; up: boolean; rx: BleReassembler; counter: number; sent: number };

/** `maxPacket` bounds reassembly: a board allocates it once, so it is kept to what a session needs. */
export function bleLinkNew(hw: BleHw, maxPacket: number): BleLink {
  return { hw: hw, up: false, rx: bleReassemblerNew(maxPacket), counter: 0, sent: 0 };
}

/** Sends a packet as notifications; false when not connected. */
export function bleLinkSend(l: BleLink, packet: Bytes): boolean {
  if (!l.up) return false;
  const chunks = bleFragment(packet, l.hw.mtu, l.counter);
  l.counter = (l.counter + chunks.length) & 0x3f;
  for (let i = 0; i < chunks.length; i++) if (!l.hw.notify(chunks[i])) return false;
  l.sent = l.sent + 1;
  return true;
}

/** One chunk written by the central; a whole packet once its last chunk is in. */
export function bleLinkChunk(l: BleLink, chunk: Bytes): Bytes | undefined {
  return bleAccept(l.rx, chunk);
}

export type LoraLink = {
  hw: LoraHw;
  region: Region;
  dr: number;
  maxPayload: number;
  duty: DutyCycle;
  queue: Bytes[];
  queueLimit: number;
  busyUntil: number;
  /** Totals for reports: frames sent, air time used (ms), frames refused as too large, dropped from the queue. */
  sent: number;
  airtimeMs: number;
  tooBig: number;
  dropped: number;
};

/** EU868 limits a device to 1 % on its uplink sub-band; US915 has no duty cycle (only dwell time). */
export function loraLinkNew(hw: LoraHw, queueLimit: number, clockStepMs: number): LoraLink {
  const region: Region = hw.region === "US915" ? "US915" : "EU868";
  const rate = regionDataRate(hw.dataRate, region);
  return {
    hw: hw, region: region, dr: hw.dataRate, maxPayload: rate === undefined ? 0 : rate.maxPayload,
    duty: dutyNew(region === "EU868" ? 10 : 1000, clockStepMs), queue: [], queueLimit: queueLimit, busyUntil: 0,
    sent: 0, airtimeMs: 0, tooBig: 0, dropped: 0,
  };
}

/** Queues a frame; false (and never sent) when it is larger than the data rate carries. */
export function loraLinkSend(l: LoraLink, frame: Bytes): boolean {
  if (frame.length > l.maxPayload) {
    l.tooBig = l.tooBig + 1;
    return false;
  }
  if (l.queue.length >= l.queueLimit) {
    l.queue.shift();
    l.dropped = l.dropped + 1;
  }
  l.queue.push(frame);
  return true;
}

/** Keys the radio with the next queued frame if the radio is idle and the duty cycle allows it. */
export function loraLinkPump(l: LoraLink, now: number): void {
  if (l.queue.length === 0 || now < l.busyUntil) return;
  const air = airtimeMsCeil(loraFrameAirtimeUs(l.queue[0].length, l.dr, l.region));
  if (!dutyAllows(l.duty, now, air)) return;
  const frame = l.queue.shift()!;
  dutyRecord(l.duty, now, air);
  l.busyUntil = now + air;
  l.sent = l.sent + 1;
  l.airtimeMs = l.airtimeMs + air;
  l.hw.send(frame);
}
