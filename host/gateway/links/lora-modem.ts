// The gateway's LoRa radio: a RAK3172-class modem (RUI3 firmware, LoRa P2P) on a serial port, driven with AT
// commands (lora-p2p.ts has the command set). Every frame it hears goes to the gateway as input on link
// "lora"; every gateway packet for "lora" goes out through it.
//
//   - Half duplex: the modem refuses to transmit while it listens, so each downlink is stop listening,
//     send, wait for "+EVT:TXP2P DONE", listen again; downlinks wait in a short queue meanwhile, one on
//     air at a time. When the queue is full the oldest is dropped (stale records are worth least).
//   - A frame larger than the spreading factor carries is refused and counted, never sent.
//   - The gateway's own downlink duty cycle (default 10 %, the EU868 869.4-869.65 MHz band) is kept with
//     the firmware's sliding-hour gate: a frame waits until the window has room for its air time.
//   - A line from the modem that means nothing is dropped and counted; nothing the modem says throws.
//   - A port that cannot be opened, or a modem that does not answer, is said once, and the gateway carries
//     on without LoRa.
import type { DownPacket } from "../devices";
import { LORA } from "../devices";
import { DutyCycle, dutyAllows, dutyNew, dutyNextAllowedMs, dutyRecord } from "../../../firmware/link/lora";
import type { Logger } from "../../telemetry/log";
import type { RadioSignal } from "../radio-signal";
import { lineSplitter, p2pAirtimeMs, p2pCommand, P2P_DEFAULTS, p2pMaxPayload, P2pSettings, parseModemLine, PRECV_CONTINUOUS } from "./lora-p2p";

/** Where a link adapter hands what it hears: each packet, with what the radio measured of it when it says. */
export type LinkSink = { input: (link: string, bytes: Uint8Array, signal?: RadioSignal) => void };

export type LoraModemOptions = {
  path: string;
  baud?: number;
  p2p?: P2pSettings;
  /** Downlink duty cycle in permille of each sliding hour (100 = 10 %). */
  dutyPermille?: number;
  queueLimit?: number;
  commandTimeoutMs?: number;
  log: Logger;
  /** Monotonic milliseconds (the duty-cycle window must not jump with the wall clock). */
  now?: () => number;
};

export type LoraModemStats = {
  received: number; sent: number; badLines: number; tooBig: number; queueDropped: number; busy: number;
  modemErrors: number; txTimeouts: number; rxErrors: number; dutyWaits: number;
};

/** What the link needs of a serialport SerialPort (and what a test double would give). */
type Port = {
  open(cb: (err: Error | null) => void): void;
  write(data: string): boolean;
  close(cb?: (err: Error | null) => void): void;
  on(ev: "data", fn: (chunk: Buffer) => void): unknown;
  on(ev: "close" | "error", fn: (e?: Error) => void): unknown;
  isOpen: boolean;
};

type Pending = { resolve: (status: string) => void; timer: NodeJS.Timeout };
type Queued = { frame: Uint8Array; busyTries: number };

/** Extra time beyond the air time for "+EVT:TXP2P DONE" (UART and radio ramp-up). */
const TX_DONE_SLACK_MS = 1000;
/** A downlink the modem calls busy is tried this many times, then dropped (counted in `busy`). */
const BUSY_TRIES = 3;

export class LoraModemLink {
  readonly stats: LoraModemStats = { received: 0, sent: 0, badLines: 0, tooBig: 0, queueDropped: 0, busy: 0, modemErrors: 0, txTimeouts: 0, rxErrors: 0, dutyWaits: 0 };
  readonly p2p: P2pSettings;
  readonly maxPayload: number;
  private readonly duty: DutyCycle;
  private readonly queue: Queued[] = [];
  private readonly now: () => number;
  private port: Port | undefined;
  private pending: Pending | undefined;
  private txDone: (() => void) | undefined;
  private ready = false;
  private sending = false;
  private wake: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LoraModemOptions, private readonly sink: LinkSink) {
    this.p2p = opts.p2p ?? P2P_DEFAULTS;
    this.maxPayload = p2pMaxPayload(this.p2p.sf);
    this.duty = dutyNew(opts.dutyPermille ?? 100, 0);
    this.now = opts.now ?? (() => performance.now());
  }

  /** Downlinks waiting for the modem. */
  get queued(): number {
    return this.queue.length;
  }

  /** The packets this link carries: the LoRa channel's. */
  owns(link: string): boolean {
    return link === LORA;
  }

  /** Opens the port and puts the modem in continuous P2P receive; false (said once) when it cannot. */
  async open(): Promise<boolean> {
    const port = await this.openPort();
    if (!port) return false;
    this.port = port;
    port.on("data", lineSplitter((l) => this.line(l), () => this.stats.badLines++));
    port.on("error", () => {});
    port.on("close", () => this.lost());
    const problem = await this.configure();
    if (problem) {
      this.opts.log.warn(`LoRa: the modem on ${this.opts.path} ${problem}; check --lora-baud (RUI3 answers at 115200 by default), that it runs RUI3 firmware, and the --lora-* settings; carrying on without LoRa`);
      await this.close();
      return false;
    }
    this.ready = true;
    this.opts.log.info("LoRa: modem listening", { port: this.opts.path, ...this.p2p, maxPayload: this.maxPayload });
    return true;
  }

  private async openPort(): Promise<Port | undefined> {
    let SerialPort: new (o: { path: string; baudRate: number; autoOpen: boolean }) => Port;
    try {
      ({ SerialPort } = (await import("serialport")) as unknown as { SerialPort: typeof SerialPort });
    } catch (e) {
      this.opts.log.warn(`LoRa: serialport does not load here (${(e as Error).message}); run npm ci on this machine; carrying on without LoRa`);
      return undefined;
    }
    const port = new SerialPort({ path: this.opts.path, baudRate: this.opts.baud ?? 115200, autoOpen: false });
    const err = await new Promise<Error | null>((r) => port.open(r));
    if (!err) return port;
    this.opts.log.warn(
      `LoRa: cannot open serial port ${this.opts.path} (${err.message}); check the path (ls /dev/serial/by-id/), that this user may use it (the dialout group), and that no other program holds it; carrying on without LoRa`,
    );
    return undefined;
  }

  /** RUI3 resets when AT+NWM changes the mode, so the AT after it is retried while the module boots. */
  private async configure(): Promise<string | undefined> {
    const steps: [string, number][] = [["AT", 2], ["AT+NWM=0", 1], ["AT", 3], [p2pCommand(this.p2p), 1], [`AT+PRECV=${PRECV_CONTINUOUS}`, 1]];
    for (const [cmd, tries] of steps) {
      let status = "";
      for (let i = 0; i < tries && status !== "OK"; i++) status = await this.command(cmd);
      if (status !== "OK") return `answered ${status === "timeout" ? "nothing" : status} to ${cmd}`;
    }
    return undefined;
  }

  /** Queues a packet for the modem; false (and counted) when it can never go out or the link is down. */
  send(p: DownPacket): boolean {
    if (!this.ready) return false;
    if (p.bytes.length > this.maxPayload || p2pAirtimeMs(this.p2p, p.bytes.length) > this.duty.budgetMs) {
      this.stats.tooBig++;
      return false;
    }
    if (this.queue.length >= (this.opts.queueLimit ?? 16)) {
      this.queue.shift();
      this.stats.queueDropped++;
    }
    this.queue.push({ frame: Uint8Array.from(p.bytes), busyTries: 0 });
    void this.pump();
    return true;
  }

  /** Keys the modem with the next frame when it is idle and the duty cycle has room. */
  private async pump(): Promise<void> {
    if (!this.ready || this.sending || this.wake || this.queue.length === 0) return;
    const q = this.queue[0];
    const air = p2pAirtimeMs(this.p2p, q.frame.length);
    const now = this.now();
    if (!dutyAllows(this.duty, now, air)) {
      this.stats.dutyWaits++;
      this.later(dutyNextAllowedMs(this.duty, now, air) - now);
      return;
    }
    this.queue.shift();
    this.sending = true;
    try {
      await this.transmit(q, air);
    } finally {
      this.sending = false;
    }
    void this.pump();
  }

  private later(ms: number): void {
    this.wake = setTimeout(() => {
      this.wake = undefined;
      void this.pump();
    }, Math.max(1, ms));
  }

  /** Stop listening, send, wait for the air time to pass, listen again. */
  private async transmit(q: Queued, air: number): Promise<void> {
    await this.command("AT+PRECV=0");
    const done = this.waitTxDone(air + TX_DONE_SLACK_MS);
    const start = this.now();
    const status = await this.command("AT+PSEND=" + Buffer.from(q.frame).toString("hex").toUpperCase());
    if (status === "OK") {
      dutyRecord(this.duty, start, air);
      this.stats.sent++;
      if (!(await done)) this.stats.txTimeouts++;
    } else {
      this.txDone = undefined;
      this.refused(q, status);
    }
    if ((await this.command(`AT+PRECV=${PRECV_CONTINUOUS}`)) !== "OK") this.stats.modemErrors++;
  }

  private refused(q: Queued, status: string): void {
    if (status === "AT_BUSY_ERROR") {
      this.stats.busy++;
      if (++q.busyTries < BUSY_TRIES) this.queue.unshift(q);
    } else if (status === "AT_PARAM_ERROR") {
      this.stats.tooBig++; // our limit and the modem's disagree: counted with the frames we refuse
    } else {
      this.stats.modemErrors++;
    }
  }

  private waitTxDone(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.txDone = undefined;
        resolve(false);
      }, ms);
      this.txDone = () => {
        clearTimeout(timer);
        this.txDone = undefined;
        resolve(true);
      };
    });
  }

  /** One command, its status line ("OK", "AT_...") or "timeout" / "closed". One at a time. */
  private command(cmd: string): Promise<string> {
    const port = this.port;
    if (!port || !port.isOpen) return Promise.resolve("closed");
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle("timeout"), this.opts.commandTimeoutMs ?? 2000);
      this.pending = { resolve, timer };
      port.write(cmd + "\r\n");
    });
  }

  private settle(status: string): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(status);
  }

  private line(text: string): void {
    const m = parseModemLine(text);
    if (m.kind === "ok") this.settle("OK");
    else if (m.kind === "error") this.settle(m.code);
    else if (m.kind === "txDone") this.txDone?.();
    else if (m.kind === "rx") {
      this.stats.received++;
      this.sink.input(LORA, m.frame, { rssi: m.rssi, snr: m.snr });
    } else if (m.kind === "rxError") this.stats.rxErrors++;
    else if (m.kind === "bad") this.stats.badLines++;
  }

  /** The port went away under us (unplugged): said once, and the queue is let go. */
  private lost(): void {
    if (this.ready) this.opts.log.warn(`LoRa: the modem's port ${this.opts.path} closed; carrying on without LoRa`);
    this.ready = false;
    this.queue.length = 0;
    if (this.wake) clearTimeout(this.wake);
    this.wake = undefined;
    this.settle("closed");
    this.txDone?.();
  }

  async close(): Promise<void> {
    const port = this.port;
    this.ready = false;
    this.port = undefined;
    this.lost();
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }
}
