// A fleet of simulated boards, each running its built bundle, talking to one gateway over BLE and LoRa in
// virtual time. The gateway is the real one (host/gateway/devices.ts) with the host's crypto; only the
// radios and the boards' hardware are modelled. A run is deterministic for its seed (the boards' own random
// numbers come from their firmware RNG, which the sandboxes take from node:crypto, so handshake bytes differ
// between runs; the schedule of losses, collisions and events does not).
import { readFileSync } from "node:fs";
import * as path from "node:path";
import type { BoardProfile } from "../../firmware/board";
import { bleAccept, bleFragment, BleReassembler, bleReassemblerNew, BLE_MAX_PACKET } from "../../firmware/link/ble";
import { DutyCycle, dutyAllows, dutyNew, dutyRecord } from "../../firmware/link/lora";
import { SaPolicy } from "../../firmware/session/sa";
import { memoryStorage } from "../../firmware/runtime/facade";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import { hostCodec } from "../record/gpcomp";
import { DeviceGateway, DownPacket, LORA, Uplink } from "../gateway/devices";
import { KeyTable } from "../gateway/keytable";
import { SimBoard } from "./board";
import { EspruinoBoard } from "./board-espruino";
import { readBoardFiles } from "../../scripts/lib/espruino-modules";
import { LuaBoard } from "./board-lua";
import { VirtualClock } from "./clock";
import { prng } from "./random";
import { BleMedium } from "./radio-ble";
import { LoraChannel } from "./radio-lora";
import { BLE_SIGNAL, LORA_SIGNAL, SignalModel } from "./signal";
import type { RadioSignal } from "../gateway/radio-signal";

export type LinkChoice = "ble" | "lora" | "mixed";

export type FleetOptions = {
  boards: number;
  link: LinkChoice;
  loss: number;
  /** Virtual minutes to run. */
  minutes: number;
  seed: number;
  /** Profiles to draw from (default: every profile the link choice can use). */
  profiles?: string[];
  /** Reading period in seconds on BLE boards and on LoRa-only boards. */
  periodBle?: number;
  periodLora?: number;
  /**
   * Seconds between status messages (off when absent): each board's application also sends its last
   * twelve temperatures as text, `t=21.50,21.50,21.51,...`, the kind of payload GPComp shrinks.
   */
  statusEvery?: number;
  /** Lua engine for NodeMCU boards. */
  luaEngine?: "wasmoon" | "fengari";
  /** Where dist/ is. */
  dist?: string;
  root?: string;
  /** Called every `progressMs` of virtual time. */
  onProgress?: (now: number, end: number, fleet: Fleet) => void;
  progressMs?: number;
  /** The gateway's device side: by default an in-process DeviceGateway with keys made up for the run. */
  gateway?: GatewayPort;
  /** Board configurations from a controller (its provisioning), instead of keys made up for the run. */
  provision?: (profile: BoardProfile, index: number) => Promise<{ device: string; config: string }>;
  /** Run against the wall clock (for a live gateway) until `stop()` says so, instead of `minutes` flat out. */
  realtime?: { stop: () => boolean };
  /** Sees every whole packet the gateway receives (a wiretap for tests). */
  tap?: (link: string, packet: Uint8Array) => void;
  /** Scripted events: called once at the start with the fleet, may schedule on fleet.clock. */
  script?: (fleet: Fleet) => void;
};

export type BoardResult = {
  name: string;
  profile: string;
  handshakes: number;
  queued: number;
  delivered: number;
  /** Copies of one id the application saw (must be 0). */
  appDuplicates: number;
  lost: number;
  /** Lost as far as the sender knows, yet delivered (the acknowledgement was what got lost). */
  lostButDelivered: number;
  /** Still waiting for an acknowledgement at the end, and not delivered yet. */
  inFlight: number;
  airtimeMs: number;
  maxFrame: number;
  memPeak: number;
  memBudget: number;
  memUnit: string;
  failed: string | undefined;
  errors: number;
  latencies: number[];
  /** Records the board's current session sent with GPComp, and the bytes that saved (firmware/record/gpcomp.ts). */
  compressed: number;
  savedBytes: number;
};

/** What the fleet's radios hand packets to: host/gateway/devices.ts in process, or a gateway process over
 * its simulator link (host/gateway/simlink.ts SimLinkClient). */
export interface GatewayPort {
  /** `signal`: what the gateway's radio measured of the packet (RSSI, and SNR on LoRa). */
  input(link: string, packet: Uint8Array, now: number, signal?: RadioSignal): void;
  connected(link: string, now: number): void;
  poll(now: number): void;
  takeOutput(): DownPacket[];
  takeUplinks(): Uplink[];
}

export type Fleet = {
  clock: VirtualClock;
  boards: SimBoard[];
  /** The in-process gateway, when the run has one. */
  gateway: DeviceGateway | undefined;
  /** Where the radios deliver; a script may swap it (a gateway restart) for `newGateway()`. */
  port: GatewayPort;
  newGateway: () => DeviceGateway;
  ble: BleMedium | undefined;
  lora: LoraChannel | undefined;
  uplinks: Uplink[];
  deviceOf: Map<string, SimBoard>;
  lostSeen: Map<string, number[]>;
  /** Each board's reading period (ms), to date its readings from their count. */
  periodMs: Map<string, number>;
};

const GATEWAY_DOWNLINK_DR = 3;
/** EU868 RX2 (869.525 MHz) allows 10 %. */
const GATEWAY_DUTY_PERMILLE = 100;

function loadProfiles(root: string): BoardProfile[] {
  const dir = path.join(root, "boards");
  return ["banglejs2", "esp32-espruino", "esp32-nodemcu-lora", "mdbt42q", "puckjs"]
    .map((n) => JSON.parse(readFileSync(path.join(dir, `${n}.json`), "utf8")) as BoardProfile);
}

function usable(p: BoardProfile, link: LinkChoice): boolean {
  if (link === "ble") return p.radios.ble !== undefined;
  if (link === "lora") return p.radios.lora !== undefined;
  return true;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export async function runFleet(opts: FleetOptions): Promise<{ fleet: Fleet; results: BoardResult[] }> {
  const root = opts.root ?? path.resolve(import.meta.dirname, "../..");
  const dist = opts.dist ?? path.join(root, "dist");
  const rand = prng(opts.seed);
  const clock = new VirtualClock();
  const ble = opts.link === "lora" ? undefined : new BleMedium(clock, prng(opts.seed + 1), opts.loss, undefined, undefined, new SignalModel(BLE_SIGNAL, prng(opts.seed + 3)));
  const lora = opts.link === "ble" ? undefined : new LoraChannel(clock, prng(opts.seed + 2), opts.loss, "EU868", new SignalModel(LORA_SIGNAL, prng(opts.seed + 4)));
  const profiles = loadProfiles(root).filter((p) => usable(p, opts.link) && (!opts.profiles || opts.profiles.includes(p.name)));
  if (profiles.length === 0) throw new Error(`no board profile can use link "${opts.link}"${opts.profiles ? ` among ${opts.profiles.join(", ")}` : ""}`);

  // Provisioning: what the controller would hand out.
  const gw = nodeKeyPair();
  const keys = new KeyTable();
  const store = memoryStorage();
  const policy: SaPolicy = {
    suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 64, store, codec: hostCodec, compress: false,
  };
  const config = keys.responders(gw, policy);
  const newGateway = () => new DeviceGateway({ config, storage: store });
  const local = opts.gateway ? undefined : newGateway();
  const gateway: GatewayPort = opts.gateway ?? local!;
  const fleet: Fleet = { clock, boards: [], gateway: local, port: gateway, newGateway, ble, lora, uplinks: [], deviceOf: new Map(), lostSeen: new Map(), periodMs: new Map() };

  const world = { clock, ble, lora, rand };
  for (let i = 0; i < opts.boards; i++) {
    const p = profiles[i % profiles.length];
    const name = `${p.name}-${String(i + 1).padStart(2, "0")}`;
    const loraOnly = !p.radios.ble || opts.link === "lora";
    const period = loraOnly ? opts.periodLora ?? 300 : opts.periodBle ?? 30;
    // Retry timers with jitter, as provisioning would hand out: boards that collide once should not collide again.
    const jitter = Math.floor(rand() * 20_000);
    const timing = `retry=${5_000 + (jitter % 2000)};retrylora=${20_000 + jitter};tries=4`;
    let device: string, conf: string;
    if (opts.provision) {
      ({ device, config: conf } = await opts.provision(p, i));
    } else if (p.handshake === "dh") {
      const dk = nodeKeyPair();
      device = hex(Uint8Array.from([0x10, i >> 8, i & 0xff, 1]));
      keys.setDh(device, device, dk.S);
      conf = `mode=dh;order=I;kid=${device};secret=${hex(dk.s)};gateway=${hex(gw.S)};slice=${p.x25519StepsPerTick}`;
    } else {
      device = hex(Uint8Array.from([0x20, i >> 8, i & 0xff, 2]));
      const psk = Uint8Array.from({ length: 32 }, () => Math.floor(rand() * 256));
      keys.setPsk(device, { current: psk, previous: undefined });
      conf = `mode=psk;order=I;id=${device};psk=${hex(psk)}`;
    }
    conf += `;period=${period};${timing}`;
    const board: SimBoard = p.target === "espruino"
      ? new EspruinoBoard(name, p, readBoardFiles(path.join(dist, "espruino"), p.name), conf, world)
      : new LuaBoard(name, p, readFileSync(path.join(dist, `lua/${p.name}.lua`), "utf8"), conf, world, opts.luaEngine ?? "wasmoon");
    fleet.boards.push(board);
    fleet.deviceOf.set(device, board);
    fleet.periodMs.set(name, period * 1000);
  }

  // The gateway's radios: a BLE central with a reassembler per connection, a LoRa concentrator whose
  // downlinks wait for the channel's duty cycle.
  const reassemblers = new Map<string, BleReassembler>();
  let bleCounter = 0;
  ble?.attachGateway(
    (from, chunk, signal) => {
      let r = reassemblers.get(from);
      if (!r) reassemblers.set(from, (r = bleReassemblerNew(BLE_MAX_PACKET)));
      const packet = bleAccept(r, chunk);
      if (packet) {
        opts.tap?.(`ble:${from}`, packet);
        fleet.port.input(`ble:${from}`, packet, clock.now, signal); // the last chunk's
      }
      pump();
    },
    (name, up) => {
      reassemblers.delete(name);
      if (up) fleet.port.connected(`ble:${name}`, clock.now);
      pump();
    },
  );
  const duty: DutyCycle = dutyNew(GATEWAY_DUTY_PERMILLE, 0);
  const downQueue: Uint8Array[] = [];
  let gwBusyUntil = 0;
  lora?.attachGateway((frame, signal) => {
    opts.tap?.(LORA, frame);
    fleet.port.input(LORA, frame, clock.now, signal);
    pump();
  });
  const pump = () => {
    for (const u of fleet.port.takeUplinks()) fleet.uplinks.push(u);
    for (const o of fleet.port.takeOutput()) {
      if (o.link === LORA) downQueue.push(o.bytes);
      else if (ble) {
        const to = o.link.slice("ble:".length);
        const chunks = bleFragment(o.bytes, ble.mtu(to), bleCounter);
        for (const c of chunks) ble.write(to, c);
        bleCounter = (bleCounter + chunks.length) & 0x3f;
      }
    }
    while (lora && downQueue.length > 0 && clock.now >= gwBusyUntil) {
      const air = lora.airtimeMs(downQueue[0].length, GATEWAY_DOWNLINK_DR);
      if (!dutyAllows(duty, clock.now, air)) break;
      const f = downQueue.shift()!;
      dutyRecord(duty, clock.now, air);
      gwBusyUntil = clock.now + lora.transmit("gateway", f, GATEWAY_DOWNLINK_DR);
    }
  };
  clock.every(100, () => {
    fleet.port.poll(clock.now);
    pump();
  });

  for (const b of fleet.boards) {
    await b.prepare();
    // Boards power up over the first few seconds, not in one instant.
    clock.at(Math.floor(rand() * 5000), () => b.boot());
    if (opts.statusEvery) clock.every(opts.statusEvery * 1000, () => void b.send(statusText(rand)));
  }
  opts.script?.(fleet);
  const end = opts.minutes * 60_000;
  const step = opts.progressMs ?? 10_000;
  if (opts.realtime) {
    const t0 = Date.now();
    let next = step;
    while (!opts.realtime.stop()) {
      clock.runUntil(Date.now() - t0);
      if (clock.now >= next) {
        next += step;
        for (const b of fleet.boards) collectLost(fleet, b);
        opts.onProgress?.(clock.now, end, fleet);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } else {
    for (let t = 0; t < end; t = Math.min(end, t + step)) {
      clock.runUntil(Math.min(end, t + step));
      for (const b of fleet.boards) collectLost(fleet, b);
      opts.onProgress?.(clock.now, end, fleet);
      await new Promise((r) => setImmediate(r));
    }
  }
  const results = fleet.boards.map((b) => summarise(fleet, b));
  for (const b of fleet.boards) b.close();
  return { fleet, results };
}

/** A status message: twelve temperatures in hundredths, drifting as a room's do. */
function statusText(rand: () => number): Uint8Array {
  let t = 2150;
  const ts: string[] = [];
  for (let i = 0; i < 12; i++) {
    t += rand() < 0.2 ? (rand() < 0.5 ? -1 : 1) : 0;
    ts.push((t / 100).toFixed(2));
  }
  return Buffer.from("t=" + ts.join(","));
}

/** Lost ids are handed over once by each report: keep them. */
function collectLost(fleet: Fleet, b: SimBoard): void {
  const r = b.report();
  if (!r.lost) return;
  const seen = fleet.lostSeen.get(b.name) ?? [];
  for (const x of r.lost.split(" ")) if (x) seen.push(Number(x));
  fleet.lostSeen.set(b.name, seen);
}

function summarise(fleet: Fleet, b: SimBoard): BoardResult {
  collectLost(fleet, b);
  const r = b.report();
  const device = [...fleet.deviceOf].find(([, x]) => x === b)![0];
  const mine = fleet.uplinks.filter((u) => u.device === device);
  const ids = new Map<number, number>();
  for (const u of mine) ids.set(u.id, (ids.get(u.id) ?? 0) + 1);
  const lost = fleet.lostSeen.get(b.name) ?? [];
  const pending = (r.pending ?? "").split(" ").filter((x) => x !== "").map(Number);
  const periodMs = fleet.periodMs.get(b.name) ?? 0;
  const latencies = periodMs > 0 ? mine.filter((u) => u.body.length === 4).map((u) => u.at - (b.bootedAt + ((u.body[2] << 8) | u.body[3]) * periodMs)).filter((x) => x >= 0) : [];
  const txs = fleet.lora?.log.filter((t) => t.from === b.name) ?? [];
  const mem = b.memory();
  return {
    name: b.name, profile: b.profile.name,
    handshakes: Number(r.handshakes ?? 0), queued: Number(r.queued ?? 0), delivered: ids.size,
    appDuplicates: [...ids.values()].filter((n) => n > 1).length,
    lost: lost.length, lostButDelivered: lost.filter((id) => ids.has(id)).length, inFlight: pending.filter((id) => !ids.has(id)).length,
    airtimeMs: txs.reduce((a, t) => a + (t.end - t.start), 0), maxFrame: txs.reduce((a, t) => Math.max(a, t.bytes), 0),
    memPeak: mem.peak, memBudget: mem.budget, memUnit: mem.unit, failed: b.failed, errors: b.errors.length, latencies,
    compressed: Number(r.gpcomp ?? 0), savedBytes: Number(r.gpcomp_saved ?? 0),
  };
}
