// The gateway's BLE radio: a central (through @stoprocent/noble, an optional dependency: its HCI socket is
// native and may not build) that scans for boards offering the sesame GATT service, connects to each,
// subscribes to its notify characteristic and writes to its write characteristic. Packets are cut and glued
// with the device runtime's own BLE link (firmware/runtime/links.ts, chunk format in firmware/link/ble.ts),
// at the MTU the connection negotiated. Each connection is link "ble:<address>".
//
// No module, no adapter, or an adapter that is not powered on within a few seconds: said once, and the
// gateway carries on without BLE. A board that disconnects is forgotten and reconnected when seen again.
import { BLE_MAX_PACKET, BLE_MTU_DEFAULT, BLE_NOTIFY_UUID, BLE_SERVICE_UUID, BLE_WRITE_UUID } from "../../../firmware/link/ble";
import type { BleHw } from "../../../firmware/hw/hal";
import { BleLink, bleLinkChunk, bleLinkNew, bleLinkSend } from "../../../firmware/runtime/links";
import type { Logger } from "../../telemetry/log";
import type { DownPacket } from "../devices";
import type { LinkSink } from "./lora-modem";
import { plausibleRssi } from "../radio-signal";

/** The part of noble's API the central uses; the real module and the tests' fake both have it. */
export type NobleCharacteristic = {
  uuid: string;
  on(ev: "data", fn: (data: Buffer) => void): unknown;
  removeListener(ev: "data", fn: (data: Buffer) => void): unknown;
  subscribeAsync(): Promise<void>;
  write(data: Buffer, withoutResponse: boolean, cb?: (err?: Error) => void): void;
};
export type NoblePeripheral = {
  address: string;
  mtu: number | null;
  /** The last RSSI noble measured (dBm; 127 when it does not know). */
  rssi?: number;
  once(ev: "disconnect", fn: () => void): unknown;
  connectAsync(): Promise<void>;
  disconnectAsync(): Promise<void>;
  discoverSomeServicesAndCharacteristicsAsync(services: string[], chars: string[]): Promise<{ characteristics: NobleCharacteristic[] }>;
};
export type NobleLike = {
  state: string;
  on(ev: "stateChange", fn: (state: string) => void): unknown;
  on(ev: "discover", fn: (p: NoblePeripheral) => void): unknown;
  removeListener(ev: "stateChange", fn: (state: string) => void): unknown;
  startScanningAsync(serviceUuids: string[], allowDuplicates: boolean): Promise<void>;
  stopScanningAsync(): Promise<void>;
};

export type BleSink = LinkSink & { connected: (link: string) => void; disconnected?: (link: string) => void };

export type BleCentralOptions = {
  log: Logger;
  /** How long the adapter has to reach poweredOn. */
  poweredOnMs?: number;
  /** Where noble comes from (tests give a fake). */
  noble?: () => Promise<NobleLike>;
};

/** A board's link, and how to stop listening to it (noble may hand out the same characteristic again). */
type Attached = { ble: BleLink; detach: () => void };

export type BleCentralStats = { connects: number; disconnects: number; setupFailures: number; packetsIn: number; packetsOut: number };

/** noble names UUIDs in lower case without dashes. */
export const nobleUuid = (u: string) => u.replace(/-/g, "").toLowerCase();

async function loadNoble(): Promise<NobleLike> {
  const m = (await import("@stoprocent/noble" as string)) as { default?: NobleLike };
  return (m.default ?? m) as NobleLike;
}

export class BleCentral {
  readonly stats: BleCentralStats = { connects: 0, disconnects: 0, setupFailures: 0, packetsIn: 0, packetsOut: 0 };
  private readonly links = new Map<string, Attached & { peripheral: NoblePeripheral }>();
  private readonly connecting = new Set<string>();
  private noble: NobleLike | undefined;

  constructor(private readonly opts: BleCentralOptions, private readonly sink: BleSink) {}

  /** The links of connected boards. */
  owns(link: string): boolean {
    return this.links.has(link);
  }

  /** Starts scanning; false (said once, with the reason) when there is no usable radio. */
  async start(): Promise<boolean> {
    let noble: NobleLike;
    try {
      noble = await (this.opts.noble ?? loadNoble)();
    } catch (e) {
      this.opts.log.warn(`BLE: no BLE central here (@stoprocent/noble does not load: ${(e as Error).message}); carrying on without BLE`);
      return false;
    }
    const ms = this.opts.poweredOnMs ?? 5000;
    const state = await poweredOn(noble, ms);
    if (state !== "poweredOn") {
      this.opts.log.warn(
        `BLE: no radio here (adapter ${state}, not poweredOn after ${ms} ms; check bluetoothctl show, rfkill, and that node may use raw HCI sockets); carrying on without BLE`,
      );
      return false;
    }
    this.noble = noble;
    noble.on("discover", (p) => void this.discovered(p));
    await this.scan();
    this.opts.log.info("BLE: scanning for sesame boards", { service: BLE_SERVICE_UUID });
    return true;
  }

  /** (Re)starts scanning: noble reports each address once per scan, so a board seen again needs a new one. */
  private async scan(): Promise<void> {
    const noble = this.noble;
    if (!noble) return;
    try {
      await noble.stopScanningAsync();
      await noble.startScanningAsync([nobleUuid(BLE_SERVICE_UUID)], false);
    } catch (e) {
      this.opts.log.warn("BLE: scanning failed", { reason: (e as Error).message });
    }
  }

  private async discovered(p: NoblePeripheral): Promise<void> {
    const name = `ble:${p.address}`;
    if (this.links.has(name) || this.connecting.has(name)) return;
    this.connecting.add(name);
    try {
      await p.connectAsync();
      const attached = await this.attach(p, name);
      this.links.set(name, { ...attached, peripheral: p });
      p.once("disconnect", () => this.gone(name));
      this.stats.connects++;
      this.opts.log.info("BLE: board connected", { link: name, mtu: p.mtu ?? BLE_MTU_DEFAULT });
      this.sink.connected(name);
    } catch (e) {
      this.stats.setupFailures++;
      this.opts.log.warn("BLE: could not set up a board; will retry when it is seen again", { link: name, reason: (e as Error).message });
      await p.disconnectAsync().catch(() => {});
      void this.scan();
    } finally {
      this.connecting.delete(name);
    }
  }

  /** Subscribes to the board's notifications and gives back the link the runtime's chunking runs on. */
  private async attach(p: NoblePeripheral, name: string): Promise<Attached> {
    const { characteristics } = await p.discoverSomeServicesAndCharacteristicsAsync([nobleUuid(BLE_SERVICE_UUID)], [nobleUuid(BLE_NOTIFY_UUID), nobleUuid(BLE_WRITE_UUID)]);
    const notify = characteristics.find((c) => c.uuid === nobleUuid(BLE_NOTIFY_UUID));
    const write = characteristics.find((c) => c.uuid === nobleUuid(BLE_WRITE_UUID));
    if (!notify || !write) throw new Error("the board's sesame service lacks its notify or write characteristic");
    // The runtime's link "notifies" each chunk; from the central's side that is a write without response
    // (GATT keeps them in order). The MTU is read per packet: noble learns it after the exchange.
    const hw: BleHw = {
      get mtu() {
        return p.mtu ?? BLE_MTU_DEFAULT;
      },
      serve: () => {},
      notify: (chunk) => {
        write.write(Buffer.from(chunk), true);
        return true;
      },
    };
    const ble = bleLinkNew(hw, BLE_MAX_PACKET);
    ble.up = true;
    const onData = (data: Buffer) => {
      const packet = bleLinkChunk(ble, Uint8Array.from(data));
      if (packet === undefined) return;
      this.stats.packetsIn++;
      const rssi = plausibleRssi(p.rssi);
      this.sink.input(name, packet, rssi === undefined ? undefined : { rssi });
    };
    notify.on("data", onData);
    await notify.subscribeAsync();
    return { ble, detach: () => notify.removeListener("data", onData) };
  }

  private gone(name: string): void {
    const e = this.links.get(name);
    if (!e) return;
    e.ble.up = false;
    e.detach();
    this.links.delete(name);
    this.stats.disconnects++;
    this.opts.log.info("BLE: board disconnected", { link: name });
    this.sink.disconnected?.(name);
    void this.scan();
  }

  /** Sends a packet to its board in chunks; false when that board is not connected. */
  send(p: DownPacket): boolean {
    const e = this.links.get(p.link);
    if (!e || !bleLinkSend(e.ble, p.bytes)) return false;
    this.stats.packetsOut++;
    return true;
  }

  async close(): Promise<void> {
    const noble = this.noble;
    this.noble = undefined;
    await noble?.stopScanningAsync().catch(() => {});
    for (const { peripheral } of [...this.links.values()]) await peripheral.disconnectAsync().catch(() => {});
  }
}

/** The adapter's state once it is poweredOn, or whatever it still is after `ms`. */
function poweredOn(noble: NobleLike, ms: number): Promise<string> {
  if (noble.state === "poweredOn") return Promise.resolve("poweredOn");
  return new Promise((resolve) => {
    // unsupported and unauthorized do not change by waiting: said at once.
    const onState = (s: string) => {
      if (s === "poweredOn" || s === "unsupported" || s === "unauthorized") done();
    };
    const timer = setTimeout(() => done(), ms);
    function done() {
      clearTimeout(timer);
      noble.removeListener("stateChange", onState);
      resolve(noble.state);
    }
    noble.on("stateChange", onState);
  });
}
