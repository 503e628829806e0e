// A fake RAK3172 on the far end of a serial line, answering as RUI3 firmware does in LoRa P2P mode, and a
// "device" radio on the same channel. It holds the hardware's rules so the gateway's modem link is tested
// against them, not against its own assumptions:
//   - every command gets "\r\n<STATUS>\r\n"; unknown commands AT_COMMAND_NOT_FOUND, bad values AT_PARAM_ERROR;
//   - AT+NWM=0 from LoRaWAN mode reboots the module: input is lost for a moment, then a banner;
//   - AT+PSEND is refused with AT_BUSY_ERROR while listening or transmitting, and with AT_PARAM_ERROR for a
//     frame over the spreading factor's limit; a sent frame is on air for its real air time, then
//     "+EVT:TXP2P DONE", and the device hears it;
//   - a device frame reaches the host as "+EVT:RXP2P:<rssi>:<snr>:<hex>" only if the modem is listening
//     (and not transmitting) when it ends; otherwise it is lost, as on air.
import { EventEmitter } from "node:events";
import { SerialPort } from "serialport";
import { lineSplitter, p2pAirtimeMs, P2P_DEFAULTS, p2pMaxPayload, P2pSettings } from "../../host/gateway/links/lora-p2p";

const REBOOT_MS = 60;

export class FakeRak3172 extends EventEmitter {
  readonly commands: string[] = [];
  readonly sent: Uint8Array[] = [];
  /** Device frames that ended while the modem was not listening. */
  missed = 0;
  nwm = 1;
  p2p: P2pSettings = { ...P2P_DEFAULTS };
  listening = false;
  transmitting = false;
  private rebootingUntil = 0;
  /** AT+PRECV=65535: listening stops after one frame. */
  private listeningOnce = false;
  private window: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(private readonly port: SerialPort) {
    super();
    port.on("data", lineSplitter((l) => this.command(l.trim()), () => {}));
  }

  static async open(path: string): Promise<FakeRak3172> {
    const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
    await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
    return new FakeRak3172(port);
  }

  /** A raw line from the module, as line noise or a firmware quirk would put it on the wire. */
  emitLine(text: string): void {
    this.port.write(text + "\r\n");
  }

  whenListening(): Promise<void> {
    return this.listening && !this.transmitting ? Promise.resolve() : new Promise((r) => this.once("listening", r));
  }

  /** The device transmits: after the frame's air time, the modem reports it if it was listening. */
  deviceTransmit(frame: Uint8Array, rssi = -61, snr = 9): Promise<boolean> {
    return new Promise((resolve) => {
      this.after(p2pAirtimeMs(this.p2p, frame.length), () => {
        if (!this.listening || this.transmitting) {
          this.missed++;
          return resolve(false);
        }
        this.emitLine(`+EVT:RXP2P:${rssi}:${snr}:${Buffer.from(frame).toString("hex").toUpperCase()}`);
        if (this.window === undefined && this.listeningOnce) this.setListening(false);
        resolve(true);
      });
    });
  }

  private after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private status(s: string): void {
    this.port.write(`\r\n${s}\r\n`);
  }

  private command(line: string): void {
    if (Date.now() < this.rebootingUntil || line === "") return;
    this.commands.push(line);
    const m = /^AT(?:\+([A-Z0-9]+))?(?:=(.*))?$/i.exec(line);
    if (!m) return this.status("AT_ERROR");
    const [, name = "", arg] = m;
    const handler: Record<string, (a: string | undefined) => string> = {
      "": () => "OK",
      NWM: (a) => this.setNwm(a),
      P2P: (a) => this.setP2p(a),
      PRECV: (a) => this.precv(a),
      PSEND: (a) => this.psend(a),
    };
    const h = handler[name.toUpperCase()];
    this.status(h ? h(arg) : "AT_COMMAND_NOT_FOUND");
  }

  private setNwm(a: string | undefined): string {
    if (a !== "0" && a !== "1") return "AT_PARAM_ERROR";
    if (Number(a) !== this.nwm) {
      this.nwm = Number(a);
      this.rebootingUntil = Date.now() + REBOOT_MS;
      this.after(REBOOT_MS, () => this.emitLine(`Current Work Mode: ${this.nwm === 0 ? "LoRa P2P" : "LoRaWAN"}.`));
    }
    return "OK";
  }

  private setP2p(a: string | undefined): string {
    if (a === "?") {
      const s = this.p2p;
      this.emitLine(`${s.freqHz}:${s.sf}:${s.bwKHz}:${s.cr}:${s.preamble}:${s.powerDbm}`);
      return "OK";
    }
    const v = (a ?? "").split(":").map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
    const [freqHz, sf, bwKHz, cr, preamble, powerDbm] = v;
    const ok = v.length === 6 && freqHz >= 150e6 && freqHz <= 960e6 && sf >= 5 && sf <= 12 && [125, 250, 500].includes(bwKHz) && cr >= 0 && cr <= 3 &&
      preamble >= 2 && preamble <= 65535 && powerDbm >= 5 && powerDbm <= 22;
    if (!ok || this.nwm !== 0) return this.nwm !== 0 ? "AT_ERROR" : "AT_PARAM_ERROR";
    this.p2p = { freqHz, sf, bwKHz, cr, preamble, powerDbm };
    return "OK";
  }

  private precv(a: string | undefined): string {
    const n = Number(a);
    if (!/^\d+$/.test(a ?? "") || n > 65535) return "AT_PARAM_ERROR";
    if (this.nwm !== 0) return "AT_ERROR";
    if (this.transmitting) return "AT_BUSY_ERROR";
    if (this.window) clearTimeout(this.window);
    this.window = undefined;
    this.listeningOnce = n === 65535;
    // 1..65533: a window of n ms that ends with RECEIVE TIMEOUT; 65534: for good; 65535: until one frame.
    if (n > 0 && n < 65534) {
      this.window = this.after(n, () => {
        this.window = undefined;
        this.setListening(false);
        this.emitLine("+EVT:RXP2P RECEIVE TIMEOUT");
      });
    }
    this.setListening(n !== 0);
    return "OK";
  }

  private psend(a: string | undefined): string {
    if (this.nwm !== 0) return "AT_ERROR";
    if (!/^(?:[0-9A-Fa-f]{2})+$/.test(a ?? "")) return "AT_PARAM_ERROR";
    const frame = Uint8Array.from(Buffer.from(a!, "hex"));
    if (frame.length > p2pMaxPayload(this.p2p.sf)) return "AT_PARAM_ERROR";
    if (this.listening || this.transmitting) return "AT_BUSY_ERROR";
    this.transmitting = true;
    this.sent.push(frame);
    this.after(p2pAirtimeMs(this.p2p, frame.length), () => {
      this.transmitting = false;
      this.emitLine("+EVT:TXP2P DONE");
      this.emit("air", frame);
    });
    return "OK";
  }

  private setListening(on: boolean): void {
    this.listening = on;
    if (on && !this.transmitting) this.emit("listening");
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    if (this.port.isOpen) await new Promise<void>((r) => this.port.close(() => r()));
  }
}
