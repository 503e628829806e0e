// A simulated NodeMCU board: the built Lua bundle (dist/lua/<board>.lua) under wasmoon (64-bit integers) or
// fengari (32-bit integers, as NodeMCU's default build), booted through its real boot line,
// `sesame.boot({ crypto = crypto, sodium = sodium, lora = lora })`, with NodeMCU-shaped modules written in Lua
// below: tmr (alarms fired by the virtual clock), file (SPIFFS, kept across power cycles), adc, gpio, and the
// SX127x binding. Memory is the Lua heap as collectgarbage("count") reports it, less the loaded code (which
// NodeMCU keeps in flash, in LFS).
import type { BoardProfile } from "../../firmware/board";
import { BoardMemory, BoardWorld, hardwareRandom, MemoryMeter, parseReport, SimBoard } from "./board";
import { loadFengari, loadWasmoon, LuaRuntime } from "./lua-runtime";

const NODEMCU_SIM = `
local h = __sesame_hex
__sim = { files = {}, alarms = {}, tx = {}, rx = nil, clock = 0 }
tmr = { ALARM_AUTO = 1, create = function()
  local t = {}
  function t:alarm(ms, mode, fn) table.insert(__sim.alarms, { ms = ms, due = __sim.clock + ms, fn = fn }); return true end
  return t
end }
file = {
  getcontents = function(n) return __sim.files[n] end,
  putcontents = function(n, d) __sim.files[n] = d; return true end,
}
adc = { ADC1 = 1, read = function(u, c) return 2000 end }
gpio = { write = function(p, l) end }
__sim_lora = {
  listen = function(cb) __sim.rx = cb end,
  send = function(f) table.insert(__sim.tx, h.tohex(f)) end,
}
print = function() end
function __sim_advance(ms)
  __sim.clock = __sim.clock + ms
  for _, a in ipairs(__sim.alarms) do
    if __sim.clock >= a.due then a.due = __sim.clock + a.ms; a.fn() end
  end
end
function __sim_take_tx() local s = table.concat(__sim.tx, ","); __sim.tx = {}; return s end
function __sim_rx(x) if __sim.rx then __sim.rx(h.fromhex(x)) end end
function __sim_dump()
  local parts = {}
  for k, v in pairs(__sim.files) do table.insert(parts, h.tohex(k) .. ":" .. h.tohex(v)) end
  return table.concat(parts, ",")
end
function __sim_load(s)
  for k, v in s:gmatch("(%x*):(%x*)") do __sim.files[h.fromhex(k)] = h.fromhex(v) end
end
`;

/** The clock step NodeMCU's hardware layer uses (firmware/hw/nodemcu.ts BASE_TICK_MS). */
const LUA_TICK_MS = 100;
const SAMPLE_EVERY = 10;

export class LuaBoard implements SimBoard {
  bootedAt = 0;
  failed: string | undefined = undefined;
  errors: string[] = [];
  private files = "";
  private gen = 0;
  private lua: (LuaRuntime & { close?(): void }) | undefined;
  private codeKb = 0;
  private readonly meter: MemoryMeter;
  private ticks = 0;
  private on = false;

  constructor(
    readonly name: string,
    readonly profile: BoardProfile,
    private readonly code: string,
    config: string,
    private readonly world: BoardWorld,
    private readonly engine: "wasmoon" | "fengari" = "wasmoon",
  ) {
    this.meter = new MemoryMeter("bytes", profile.memory.bytes, "bytes of Lua heap");
    this.files = Buffer.from("sesame.cfg").toString("hex") + ":" + Buffer.from(config).toString("hex");
  }

  async prepare(): Promise<void> {
    const opts = { nodemcu: true, chunkName: `${this.profile.name}.lua`, random: hardwareRandom(this.world) };
    this.lua = this.engine === "wasmoon" ? await loadWasmoon(this.code, opts) : loadFengari(this.code, opts);
    if (this.code.includes("]=====]")) throw new Error("the Lua bundle contains the long-string closer the simulator uses");
    this.lua.eval(`__sim_code = [=====[${this.code}]=====]; return ""`);
  }

  boot(): void {
    const gen = ++this.gen;
    const { clock, lora } = this.world;
    this.bootedAt = clock.now;
    const lua = this.lua;
    if (!lua) throw new Error(`${this.name}: prepare() first`);
    // A fresh instance of the bundle and of the board's RAM; only the files survive.
    lua.eval(`__sesame_load(__sim_code, "${this.profile.name}.lua")` + NODEMCU_SIM + `__sim_load(${JSON.stringify(this.files)}); return ""`);
    this.codeKb = this.heapKb();
    const r = lua.eval(`return sesame.boot({ crypto = crypto, sodium = sodium, lora = __sim_lora })`);
    if (r) {
      this.failed = r;
      return;
    }
    this.on = true;
    const alive = () => this.gen === gen && this.failed === undefined;
    const radio = this.profile.radios.lora;
    const flush = () => {
      const tx = lua.eval("return __sim_take_tx()");
      if (tx && lora && radio) for (const x of tx.split(",")) lora.transmit(this.name, Buffer.from(x, "hex"), radio.dataRate);
    };
    const guarded = (src: string) => {
      if (!alive()) return;
      try {
        lua.eval(src);
      } catch (e) {
        this.errors.push((e as Error).message);
      }
      flush();
    };
    clock.every(LUA_TICK_MS, () => {
      guarded(`__sim_advance(${LUA_TICK_MS}); return ""`);
      if (++this.ticks % SAMPLE_EVERY === 0) this.sample();
    }, () => !alive());
    if (radio && lora) lora.attachBoard(this.name, (frame) => guarded(`__sim_rx("${Buffer.from(frame).toString("hex")}"); return ""`));
    flush();
    this.sample();
  }

  powerOff(): void {
    if (this.lua && this.on) this.files = this.lua.eval("return __sim_dump()");
    this.on = false;
    this.gen++;
    this.world.lora?.detachBoard(this.name);
  }

  report(): Record<string, string> {
    return this.lua && this.on ? parseReport(this.lua.eval("return sesame.report()")) : {};
  }

  send(body: Uint8Array): number {
    return this.lua && this.on ? Number(this.lua.eval(`return sesame.send(sesame.fromHex("${Buffer.from(body).toString("hex")}"))`)) : -1;
  }

  memory(): BoardMemory {
    return this.meter.memory();
  }

  close(): void {
    this.powerOff();
    this.lua?.close?.();
    this.lua = undefined;
  }

  /** The Lua heap after a full collection (KB), or NaN where the engine cannot tell. */
  private heapKb(): number {
    return Number(this.lua!.eval(`local ok = pcall(collectgarbage, "collect"); local ok2, kb = pcall(collectgarbage, "count"); return ok2 and kb or "nan"`));
  }

  private sample(): void {
    if (!this.lua || !this.on) return;
    const kb = this.heapKb();
    if (Number.isNaN(kb)) return; // fengari has no collectgarbage: memory is measured under wasmoon
    const out = this.meter.sample(Math.round((kb - this.codeKb) * 1024));
    if (out !== undefined) {
      this.failed = out;
      this.powerOff();
    }
  }
}
