// BLE connections in virtual time, between the gateway (the central) and each board (a peripheral offering
// the sesame GATT service). What the model keeps of the real link layer:
//   - a board in range is connected after an advertising delay; out of range, its connection drops at once;
//   - PDUs move only at connection events (every `intervalMs`), in order, one ATT value of at most MTU - 3
//     bytes each (firmware/link/ble.ts cuts packets into such chunks);
//   - a PDU lost on the air (probability `loss`) is retransmitted by the link layer at the next event, so loss
//     shows as latency; `maxRetries` losses in a row (the supervision timeout) drop the connection;
//   - the central reports each PDU's RSSI for its board's distance (./signal.ts).
import type { RadioSignal } from "../gateway/radio-signal";
import { VirtualClock } from "./clock";
import { prng } from "./random";
import { BLE_SIGNAL, SignalModel } from "./signal";

type Peer = {
  name: string;
  mtu: number;
  inRange: boolean;
  connected: boolean;
  /** Bumped on every (dis)connection: chunks scheduled for an older connection are dropped. */
  epoch: number;
  upFree: number;
  downFree: number;
  toBoard: (chunk: Uint8Array) => void;
  onConnect: (up: boolean) => void;
};

export type BleStats = { pdus: number; retransmissions: number; drops: number; connections: number };

export class BleMedium {
  readonly stats: BleStats = { pdus: 0, retransmissions: 0, drops: 0, connections: 0 };
  private readonly peers = new Map<string, Peer>();
  private gatewayHear: (from: string, chunk: Uint8Array, signal: RadioSignal) => void = () => {};
  private gatewayConnect: (name: string, up: boolean) => void = () => {};

  constructor(
    private readonly clock: VirtualClock,
    private readonly rand: () => number,
    private readonly loss: number,
    readonly intervalMs = 30,
    private readonly maxRetries = 60,
    private readonly signal = new SignalModel(BLE_SIGNAL, prng(0)),
  ) {}

  attachGateway(hear: (from: string, chunk: Uint8Array, signal: RadioSignal) => void, connect: (name: string, up: boolean) => void): void {
    this.gatewayHear = hear;
    this.gatewayConnect = connect;
  }

  /** A board starts advertising (at boot). */
  attachBoard(name: string, mtu: number, toBoard: (chunk: Uint8Array) => void, onConnect: (up: boolean) => void): void {
    const p: Peer = { name, mtu, inRange: this.peers.get(name)?.inRange ?? true, connected: false, epoch: 0, upFree: 0, downFree: 0, toBoard, onConnect };
    this.peers.set(name, p);
    if (p.inRange) this.advertise(p);
  }

  /** The board lost power. */
  detachBoard(name: string): void {
    const p = this.peers.get(name);
    if (p) this.drop(p, false);
    this.peers.delete(name);
  }

  /** Moves a board in or out of the gateway's range. */
  setInRange(name: string, inRange: boolean): void {
    const p = this.peers.get(name);
    if (!p) return;
    p.inRange = inRange;
    if (!inRange) this.drop(p, true);
    else if (!p.connected) this.advertise(p);
  }

  isConnected(name: string): boolean {
    return this.peers.get(name)?.connected ?? false;
  }

  mtu(name: string): number {
    return this.peers.get(name)?.mtu ?? 23;
  }

  /** The board notifies a chunk; false when not connected. */
  notify(from: string, chunk: Uint8Array): boolean {
    const p = this.peers.get(from);
    if (!p || !p.connected) return false;
    this.carry(p, chunk, true);
    return true;
  }

  /** The gateway writes a chunk to a board; false when not connected. */
  write(to: string, chunk: Uint8Array): boolean {
    const p = this.peers.get(to);
    if (!p || !p.connected) return false;
    this.carry(p, chunk, false);
    return true;
  }

  private advertise(p: Peer): void {
    const epoch = ++p.epoch;
    // Advertising every 100 ms to 1 s, and the central's scan window: a few hundred ms on average.
    this.clock.after(100 + Math.floor(this.rand() * 900), () => {
      if (p.epoch !== epoch || !p.inRange || p.connected || this.peers.get(p.name) !== p) return;
      p.connected = true;
      p.epoch++;
      this.stats.connections++;
      p.upFree = p.downFree = this.clock.now;
      p.onConnect(true);
      this.gatewayConnect(p.name, true);
    });
  }

  private drop(p: Peer, tellBoard: boolean): void {
    p.epoch++;
    if (!p.connected) return;
    p.connected = false;
    this.stats.drops++;
    if (tellBoard) p.onConnect(false);
    this.gatewayConnect(p.name, false);
    if (tellBoard && p.inRange) this.advertise(p);
  }

  private carry(p: Peer, chunk: Uint8Array, up: boolean): void {
    if (chunk.length > p.mtu - 3) throw new Error(`BLE: ${p.name} sent ${chunk.length} bytes in one ATT value; its MTU ${p.mtu} allows ${p.mtu - 3}`);
    let tries = 0;
    while (this.rand() < this.loss) {
      tries++;
      if (tries >= this.maxRetries) {
        this.clock.after(tries * this.intervalMs, () => this.drop(p, true));
        return;
      }
    }
    this.stats.pdus++;
    this.stats.retransmissions += tries;
    // The next connection event after the previous PDU in this direction, then one more per retransmission.
    const free = Math.max(up ? p.upFree : p.downFree, this.clock.now);
    const at = (Math.floor(free / this.intervalMs) + 1 + tries) * this.intervalMs;
    if (up) p.upFree = at;
    else p.downFree = at;
    const epoch = p.epoch;
    const copy = Uint8Array.from(chunk);
    this.clock.at(at, () => {
      if (p.epoch !== epoch || !p.connected) return;
      if (up) this.gatewayHear(p.name, copy, this.signal.sample(p.name));
      else p.toBoard(copy);
    });
  }
}
