// A fake of the BLE hardware as noble shows it to a central: an adapter that powers on (or never does), and
// peripherals offering the sesame GATT service whose device side is the firmware's own BLE link
// (firmware/runtime/links.ts). The ATT MTU is enforced: a write or notification longer than MTU - 3 bytes is
// refused, as a controller would, so a central that ignores the MTU fails here.
import { EventEmitter } from "node:events";
import { BLE_NOTIFY_UUID, BLE_SERVICE_UUID, BLE_WRITE_UUID } from "../../firmware/link/ble";
import { BleLink, bleLinkChunk, bleLinkNew, bleLinkSend } from "../../firmware/runtime/links";
import { nobleUuid } from "../../host/gateway/links/ble-central";

export class FakeNoble extends EventEmitter {
  state = "unknown";
  scanning: string[] | undefined;
  scans = 0;

  /** The adapter reaches `state` a moment after start-up (poweredOn, or poweredOff for "no radio"). */
  constructor(finalState: string) {
    super();
    setTimeout(() => {
      this.state = finalState;
      this.emit("stateChange", finalState);
    }, 5);
  }

  async startScanningAsync(uuids: string[], _allowDuplicates: boolean): Promise<void> {
    if (this.state !== "poweredOn") throw new Error(`adapter is ${this.state}`);
    this.scanning = uuids;
    this.scans++;
  }

  async stopScanningAsync(): Promise<void> {
    this.scanning = undefined;
  }

  /** A board advertises; a scan for its service reports it. */
  advertise(p: FakePeripheral): boolean {
    if (!this.scanning || !this.scanning.includes(nobleUuid(BLE_SERVICE_UUID))) return false;
    this.emit("discover", p);
    return true;
  }
}

class FakeCharacteristic extends EventEmitter {
  constructor(readonly uuid: string, private readonly onWrite: (data: Buffer) => Error | undefined, private readonly onSubscribe: () => void) {
    super();
  }
  async subscribeAsync(): Promise<void> {
    this.onSubscribe();
  }
  write(data: Buffer, _withoutResponse: boolean, cb?: (err?: Error) => void): void {
    const err = this.onWrite(data);
    cb?.(err);
  }
}

export class FakePeripheral extends EventEmitter {
  mtu: number | null = null;
  /** As noble keeps it from the board's advertising (dBm). */
  rssi = -67;
  connected = false;
  /** Whole packets the device side took in, chunk sizes seen each way, and refusals for MTU violations. */
  readonly received: Uint8Array[] = [];
  readonly writeSizes: number[] = [];
  readonly notifySizes: number[] = [];
  oversize = 0;
  private subscribed = false;
  private readonly device: BleLink;
  private readonly notifyChar: FakeCharacteristic;
  private readonly writeChar: FakeCharacteristic;

  constructor(readonly address: string, private readonly attMtu = 23) {
    super();
    this.device = bleLinkNew({ mtu: attMtu, serve: () => {}, notify: (c) => this.notify(c) }, 4111);
    this.notifyChar = new FakeCharacteristic(nobleUuid(BLE_NOTIFY_UUID), () => new Error("not writable"), () => (this.subscribed = true));
    this.writeChar = new FakeCharacteristic(nobleUuid(BLE_WRITE_UUID), (d) => this.written(d), () => {});
  }

  async connectAsync(): Promise<void> {
    this.connected = true;
    this.mtu = this.attMtu;
    this.device.up = true;
  }

  async disconnectAsync(): Promise<void> {
    this.drop();
  }

  /** The link drops (the board walked away or reset). */
  drop(): void {
    if (!this.connected) return;
    this.connected = this.subscribed = this.device.up = false;
    this.emit("disconnect", 0x13);
  }

  async discoverSomeServicesAndCharacteristicsAsync(services: string[], chars: string[]): Promise<{ characteristics: FakeCharacteristic[] }> {
    if (!this.connected) throw new Error("not connected");
    if (!services.includes(nobleUuid(BLE_SERVICE_UUID))) return { characteristics: [] };
    return { characteristics: [this.notifyChar, this.writeChar].filter((c) => chars.includes(c.uuid)) };
  }

  /** The device sends a packet: the runtime's chunks as notifications. */
  deviceSend(packet: Uint8Array): boolean {
    return bleLinkSend(this.device, packet);
  }

  private notify(chunk: Uint8Array): boolean {
    if (!this.connected || !this.subscribed) return false;
    if (chunk.length > this.attMtu - 3) return this.refuse();
    this.notifySizes.push(chunk.length);
    this.notifyChar.emit("data", Buffer.from(chunk), true);
    return true;
  }

  private written(data: Buffer): Error | undefined {
    if (!this.connected) return new Error("not connected");
    if (data.length > this.attMtu - 3) {
      this.refuse();
      return new Error(`write of ${data.length} bytes over ATT MTU ${this.attMtu}`);
    }
    this.writeSizes.push(data.length);
    const packet = bleLinkChunk(this.device, Uint8Array.from(data));
    if (packet !== undefined) this.received.push(packet);
    return undefined;
  }

  private refuse(): false {
    this.oversize++;
    return false;
  }
}
