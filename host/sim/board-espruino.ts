// A simulated Espruino board: the built bundle (dist/espruino/<board>.js) in the Espruino-shaped sandbox,
// booted through its real boot line, `sesame.boot({ require: require, lora: <driver> })`, against the board
// APIs it calls: NRF (the GATT service, notifications, connect events) wired to the BLE medium, an SX127x
// driver wired to the LoRa channel, getTime and setInterval on the virtual clock, Storage that survives power
// cycles, E.getTemperature, LED1. Memory is counted like JsVars (host/sim/espruino-jsvars.ts) and a board that
// goes over its profile's budget stops, as the real one would.
import * as vm from "node:vm";
import type { BoardProfile } from "../../firmware/board";
import { BLE_NOTIFY_UUID, BLE_SERVICE_UUID, BLE_WRITE_UUID } from "../../firmware/link/ble";
import { BoardMemory, BoardWorld, hardwareRandom, MemoryMeter, parseReport, SimBoard } from "./board";
import { loadEspruino, EspruinoSandbox } from "./espruino-sandbox";
import { codeJsVars, EVENT_JSVARS, valueJsVars } from "./espruino-jsvars";
import { ESPRUINO_MODULES } from "../../scripts/lib/espruino-modules";
import { moduleGlobal, storageName } from "../../scripts/lib/espruino-split";
import { BUNDLE_FILE } from "../../scripts/lib/flash-espruino";

/** Memory is sampled every this many timer callbacks (walking the state graph costs host time). */
const SAMPLE_EVERY = 10;

export class EspruinoBoard implements SimBoard {
  bootedAt = 0;
  failed: string | undefined = undefined;
  errors: string[] = [];
  /** Storage: flash survives power cycles. */
  readonly files = new Map<string, string>();
  private gen = 0;
  private sandbox: EspruinoSandbox | undefined;
  private readonly meter: MemoryMeter;
  private calls = 0;

  private readonly code: string;
  /** The bundle's modules (scripts/lib/espruino-split.ts): the global each is loaded into, and its code's JsVars. */
  private readonly modules: { global: string; jsVars: number }[] = [];
  /** The largest module loaded since the last sample: it was in RAM while its event ran. */
  private moduleHigh = 0;

  /** `files`: the bundle's Storage files (readBoardFiles: sesame.js and its modules). */
  constructor(
    readonly name: string,
    readonly profile: BoardProfile,
    files: Record<string, string>,
    config: string,
    private readonly world: BoardWorld,
  ) {
    for (const [f, text] of Object.entries(files)) this.files.set(f, text);
    this.code = files[BUNDLE_FILE];
    for (const m of ESPRUINO_MODULES) {
      const text = files[storageName(m.name)];
      if (text !== undefined) this.modules.push({ global: moduleGlobal(m.name), jsVars: codeJsVars(text) });
    }
    this.files.set("sesame.cfg", config);
    this.meter = new MemoryMeter("JsVars", profile.memory.jsVars, "JsVars");
    this.hwRand = hardwareRandom(world);
  }

  private readonly hwRand: () => number;

  async prepare(): Promise<void> {}

  boot(): void {
    const gen = ++this.gen;
    const { clock, ble, lora } = this.world;
    const alive = () => this.gen === gen && this.failed === undefined;
    this.bootedAt = clock.now;
    const bootAt = clock.now;
    let onWrite: ((evt: unknown) => void) | undefined;
    const handlers: Record<string, () => void> = {};
    let loraRx: ((frame: unknown) => void) | undefined;
    const guard = (fn: () => void) => () => {
      if (!alive()) return;
      try {
        fn();
      } catch (e) {
        this.errors.push(String(e));
      }
      this.endEvent();
      if (++this.calls % SAMPLE_EVERY === 0) this.sample();
    };
    const name = this.name;
    const NRF = {
      setServices: (svc: Record<string, Record<string, { onWrite?: (evt: unknown) => void }>>) => {
        onWrite = svc[BLE_SERVICE_UUID]?.[BLE_WRITE_UUID]?.onWrite;
      },
      updateServices: (u: Record<string, Record<string, { value: ArrayLike<number> }>>) => {
        const v = u[BLE_SERVICE_UUID]?.[BLE_NOTIFY_UUID]?.value;
        if (!v || !ble || !ble.notify(name, Uint8Array.from(v))) throw new Error("Not connected");
      },
      on: (event: string, cb: () => void) => {
        handlers[event] = cb;
      },
    };
    const sandbox = loadEspruino(this.code, {
      nativeCrypto: this.profile.nativeCrypto, files: this.files, filename: `dist/espruino/${this.profile.name}.js`,
      globals: {
        NRF,
        getTime: () => (clock.now - bootAt) / 1000,
        setInterval: (fn: () => void, ms: number) => clock.every(ms, guard(fn), () => !alive()),
        LED1: { write: () => {} },
      },
      E: { getTemperature: () => 21 + Math.round(this.world.rand() * 400) / 100, hwRand: this.hwRand },
    });
    this.sandbox = sandbox;
    const toBoard = vm.runInContext("(function (b) { var u = new Uint8Array(b.length); for (var i = 0; i < b.length; i++) u[i] = b[i]; return u; })", sandbox.context) as (b: Uint8Array) => Uint8Array;
    const radio = this.profile.radios.lora;
    const driver = radio && lora ? {
      listen: (cb: (frame: unknown) => void) => { loraRx = cb; },
      send: (frame: ArrayLike<number>) => { if (alive()) lora.transmit(name, Uint8Array.from(frame), radio.dataRate); },
    } : undefined;
    (sandbox.context as Record<string, unknown>).__lora = driver;
    const r = vm.runInContext("sesame.boot({ require: require, lora: __lora })", sandbox.context) as string;
    this.endEvent();
    if (r) {
      this.failed = r;
      return;
    }
    if (this.profile.radios.ble && ble) {
      ble.attachBoard(name, this.profile.radios.ble.mtu,
        (chunk) => guard(() => onWrite?.({ data: toBoard(chunk).buffer }))(),
        (up) => guard(() => handlers[up ? "connect" : "disconnect"]?.())());
    }
    if (driver && lora) lora.attachBoard(name, (frame) => guard(() => loraRx?.(toBoard(frame)))());
    this.sample();
  }

  powerOff(): void {
    this.gen++;
    this.world.ble?.detachBoard(this.name);
    this.world.lora?.detachBoard(this.name);
    this.sandbox = undefined;
  }

  report(): Record<string, string> {
    if (!this.sandbox) return {};
    return parseReport(vm.runInContext("sesame.report()", this.sandbox.context) as string);
  }

  send(body: Uint8Array): number {
    if (!this.sandbox) return -1;
    return vm.runInContext(`sesame.send(sesame.fromHex("${Buffer.from(body).toString("hex")}"))`, this.sandbox.context) as number;
  }

  memory(): BoardMemory {
    return this.meter.memory();
  }

  close(): void {
    this.powerOff();
  }

  /**
   * An event is over: its modules leave RAM, as on the board (where a zero timeout does it; the sandbox's
   * timeouts run on the host's clock, not the simulation's).
   */
  private endEvent(): void {
    const ctx = this.sandbox?.context as Record<string, unknown> | undefined;
    if (!ctx || typeof ctx.sesameDrop !== "function") return;
    for (const m of this.modules) if (ctx[m.global] !== undefined && m.jsVars > this.moduleHigh) this.moduleHigh = m.jsVars;
    (ctx.sesameDrop as () => void)();
  }

  private sample(): void {
    if (!this.sandbox) return;
    const state = vm.runInContext("sesame.state()", this.sandbox.context);
    const out = this.meter.sample(codeJsVars(this.code) + this.moduleHigh + EVENT_JSVARS + valueJsVars(state));
    this.moduleHigh = 0;
    if (out !== undefined) {
      this.failed = out;
      this.powerOff();
    }
  }
}
