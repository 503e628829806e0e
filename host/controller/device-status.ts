// Where and when each device was last heard, and how often: what the controller routes a device's commands
// by (the gateway, and in relay mode the link on it, that last carried it) and what the fleet view and the
// devices-online gauge show. Behind one small interface so that a controller cluster can keep it in a shared
// store (Postgres) instead of this process's memory: `heard` is the only write, once per reading, and a
// shared implementation can batch those writes and answer the reads from a copy refreshed every second.
export type Via = {
  /** The gateway's key id (hex). */
  gateway: string;
  /** The link the device was heard on ("ble:<address>", "lora"), when known: in relay mode from each
   * reading; in terminate mode the gateway names it when the session opens. */
  link?: string;
  /** The session's peer (a dh kid or a psk device id, hex), which the gateway knows the device by. */
  peer: string;
};

export type DeviceSeen = Via & {
  /** When the last reading came, ms since the epoch. */
  at: number;
  /** Readings in the last minute. */
  perMinute: number;
};

export interface DeviceStatusBook {
  /** A reading from `device` came in through `via` at `at` (ms). */
  heard(device: string, via: Via, at: number): void;
  /** The link a device's session is on, as its holder said when the session opened. */
  linked(device: string, link: string): void;
  /** What is known of one device, or undefined if it was never heard. */
  get(device: string, now: number): DeviceSeen | undefined;
  /** Devices heard within `windowMs` of `now`. */
  online(now: number, windowMs: number): number;
}

/** A device is online while heard from within this window: a LoRa board may report only every few minutes. */
export const ONLINE_WINDOW_MS = 600_000;

/** Readings per minute are counted in six 10-second slots. */
const SLOT_MS = 10_000;
const SLOTS = 6;

type Entry = { gateway: string; peer: string; link: string | undefined; at: number; slots: number[]; slotAt: number };

export class MemoryDeviceStatus implements DeviceStatusBook {
  private readonly devices = new Map<string, Entry>();
  /** Links named at session open, for devices not heard from yet. */
  private readonly links = new Map<string, string>();

  constructor(private readonly maxDevices = 1_000_000) {}

  heard(device: string, via: Via, at: number): void {
    let e = this.devices.get(device);
    if (e === undefined) {
      if (this.devices.size >= this.maxDevices) this.devices.delete(this.devices.keys().next().value as string);
      // All fields from the start (one object shape for every entry).
      e = { gateway: via.gateway, peer: via.peer, link: undefined, at, slots: [0, 0, 0, 0, 0, 0], slotAt: slotOf(at) };
      this.devices.set(device, e);
    }
    e.gateway = via.gateway;
    e.peer = via.peer;
    e.link = via.link ?? this.links.get(device) ?? e.link;
    e.at = at;
    advance(e, at);
    e.slots[e.slotAt % SLOTS]++;
  }

  linked(device: string, link: string): void {
    if (this.links.size >= this.maxDevices && !this.links.has(device)) this.links.delete(this.links.keys().next().value as string);
    this.links.set(device, link);
    const e = this.devices.get(device);
    if (e !== undefined) e.link = link;
  }

  get(device: string, now: number): DeviceSeen | undefined {
    const e = this.devices.get(device);
    if (e === undefined) return undefined;
    advance(e, now);
    const seen: DeviceSeen = { gateway: e.gateway, peer: e.peer, at: e.at, perMinute: e.slots.reduce((a, b) => a + b, 0) };
    if (e.link !== undefined) seen.link = e.link;
    return seen;
  }

  online(now: number, windowMs: number): number {
    let n = 0;
    for (const e of this.devices.values()) if (now - e.at < windowMs) n++;
    return n;
  }
}

const slotOf = (t: number) => Math.floor(t / SLOT_MS);

/** Empties the slots that fell out of the last minute by `t`. */
function advance(e: Entry, t: number): void {
  const s = slotOf(t);
  if (s <= e.slotAt) return;
  for (let k = e.slotAt + 1; k <= Math.min(s, e.slotAt + SLOTS); k++) e.slots[k % SLOTS] = 0;
  e.slotAt = s;
}
