// A board in real time in the test's own process: the device runtime (firmware/runtime/runtime.ts, the code the
// bundles run) on a hardware layer of BLE only, reached through a gateway process's simulator link as the
// link "ble:<name>". Light enough for a cluster test to run several while processes come and go; the board
// can be moved to another gateway (a BLE disconnect here, a connect there) and can lose what the gateway
// sends it (`dropDown`), which is how a test makes it resend.
import { bleAccept, bleFragment, bleReassemblerNew } from "../../firmware/link/ble";
import type { Hal } from "../../firmware/hw/hal";
import { memoryStorage } from "../../firmware/runtime/facade";
import { rtLink, rtNew, rtSend, rtStart, TID_BLE, type Runtime } from "../../firmware/runtime/runtime";
import type { DownPacket } from "../../host/gateway/devices";
import { hostProvider } from "../../host/crypto/provider";

/** What a board needs of a gateway's simulator link (host/gateway/simlink.ts SimLinkClient). */
export type SimLink = { input(link: string, packet: Uint8Array): void; connected(link: string): void; disconnected(link: string): void; takeOutput(): DownPacket[]; attached: boolean };

const MTU = 247;

export class BleBoard {
  readonly rt: Runtime;
  readonly link: string;
  /** Command bodies the application got, in order (hex). */
  readonly commands: string[] = [];
  /** Ids of readings sent (rtSend). */
  readonly sent: number[] = [];
  /** Drops a packet the gateway sends this board (true = lost on the air). */
  dropDown: (packet: Uint8Array) => boolean = () => false;
  private gateway: SimLink | undefined;
  private onConnect: ((up: boolean) => void) | undefined;
  private onChunk: ((chunk: Uint8Array) => void) | undefined;
  private readonly rx = bleReassemblerNew(4096);
  private counter = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly lostIds: number[] = [];

  /** `config`: what provisioning gave (mode=psk;...), with timing settings appended if wanted (rto, tries). */
  constructor(readonly name: string, config: string) {
    this.link = `ble:${name}`;
    const hal: Hal = {
      now: () => Date.now(), clockStepMs: 1,
      every: (ms, fn) => void this.timers.push(setInterval(fn, ms)),
      storage: memoryStorage(), provider: hostProvider, codec: undefined,
      ble: {
        serve: (onConnect, onChunk) => {
          this.onConnect = onConnect;
          this.onChunk = onChunk;
        },
        notify: (chunk) => {
          if (this.gateway === undefined) return false;
          const packet = bleAccept(this.rx, chunk);
          if (packet !== undefined) this.gateway.input(this.link, Uint8Array.from(packet));
          return true;
        },
        mtu: MTU,
      },
      lora: undefined, sensor: () => 0, led: () => {}, log: () => {},
    };
    this.rt = rtNew(hal, config);
    this.rt.onCommand = (body) => void this.commands.push(Buffer.from(body).toString("hex"));
    rtStart(this.rt, 50);
  }

  /** Connects over BLE through `gateway` (from another one, if connected: a move). */
  attach(gateway: SimLink): void {
    this.detach();
    this.gateway = gateway;
    gateway.connected(this.link);
    this.onConnect?.(true);
  }

  detach(): void {
    if (this.gateway === undefined) return;
    this.gateway.disconnected(this.link);
    this.gateway = undefined;
    rtLink(this.rt, TID_BLE, false);
  }

  /** Whether it is attached through `gateway`. */
  on(gateway: SimLink): boolean {
    return this.gateway === gateway;
  }

  /** A reading; its id (-1 when the runtime refused it: its queue was full). */
  send(body: Uint8Array): number {
    const id = rtSend(this.rt, body);
    if (id >= 0) this.sent.push(id);
    return id;
  }

  /** A packet the gateway sent to this board's link. */
  hear(packet: Uint8Array): void {
    if (this.dropDown(packet)) return;
    for (const c of bleFragment(packet, MTU, this.counter)) this.onChunk?.(c);
    this.counter = (this.counter + 1) & 0x3f;
  }

  /** Reading ids the runtime gave up (it reports each once; kept here). */
  get lost(): number[] {
    for (const id of this.rt.lostIds.splice(0)) if (id >= 0) this.lostIds.push(id);
    return this.lostIds;
  }

  /** Reading ids the gateway acknowledged to the board: sent, not waiting, not given up. */
  acknowledged(): number[] {
    const open = new Set([...this.rt.sender.pending.map((o) => o.id), ...this.lost]);
    return this.sent.filter((id) => !open.has(id));
  }

  stop(): void {
    this.detach();
    for (const t of this.timers) clearInterval(t);
  }
}

/** Delivers what each gateway sends to the boards attached through it, every few milliseconds. */
export function radio(gateways: SimLink[], boards: BleBoard[]): () => void {
  const t = setInterval(() => {
    for (const g of gateways) {
      for (const o of g.takeOutput()) {
        const b = boards.find((x) => x.link === o.link && x.on(g));
        b?.hear(o.bytes);
      }
    }
  }, 5);
  return () => clearInterval(t);
}
