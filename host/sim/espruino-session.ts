// One whole device session on a real Espruino interpreter, for host/sim/espruino-memory.ts: the board's
// bundle booted from Storage through its boot line, a gateway in Node on the other end of a fake BLE link.
//
//   part 1: connect, the handshake, records both ways (every reading acknowledged), a command, a rekey on
//           both sides (rekey=1500 ms), more records;
//   part 2: a power cycle (the interpreter process is killed; its flash file, Storage, stays), a new
//           interpreter booted the same way, which resumes the saved session without a handshake: records
//           again (its receiving key is refused until the gateway moves on, so a KEY_UPDATE goes too), a
//           command.
// The interpreter is driven over its console one short line at a time (host/sim/espruino-console.ts): a fake
// `NRF` keeps what the board's NRF keeps (the services and their options, the connect handlers),
// updateServices prints each notified chunk, and the gateway's chunks go into the write characteristic's
// onWrite. `filler` JsVars are taken between loading the bundle and booting it, in both parts: a run that
// fits tells the search in espruino-memory.ts that the session fits in what was left.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { BoardProfile } from "../../firmware/board";
import { fromHex, toHex } from "../../firmware/bytes";
import { x25519StepCalls } from "../../firmware/crypto/x25519";
import { BLE_NOTIFY_UUID, BLE_SERVICE_UUID, BLE_WRITE_UUID, bleAccept, bleFragment, bleReassemblerNew, BLE_MAX_PACKET } from "../../firmware/link/ble";
import * as facade from "../../firmware/runtime/facade";
import { encodeAck, encodeData, messageId, messageKind, MSG_DATA } from "../../firmware/runtime/messages";
import { BOOT_LOAD } from "../../scripts/lib/flash-espruino";
import { hostProvider, nodeX25519 } from "../crypto/provider";
import { hostCodec } from "../record/gpcomp";
import { EspruinoConsole } from "./espruino-console";

export const REKEY_MS = 1500;

export type Keys = { deviceConf: string; gatewayConf: string };

/** The same keys and identities for a board in every run (so every run leaves the same memory behind). */
export function sessionKeys(board: BoardProfile): Keys {
  const common = `mode=${board.handshake};order=I;rekey=${REKEY_MS}`;
  const bytes = (what: string, n: number) => crypto.createHash("sha256").update(board.name + ":" + what).digest().subarray(0, n);
  if (board.handshake === "dh") {
    const gs = bytes("gateway", 32), ds = bytes("device", 32);
    const base = new Uint8Array(32);
    base[0] = 9;
    const kid = toHex(bytes("kid", 4));
    return {
      // A sliced X25519 (the profile's steps per 100 ms tick) takes longer than the default retry (5 s), so
      // the device would start over before finishing: the retry is raised to let the handshake complete.
      deviceConf: `${common};kid=${kid};secret=${toHex(ds)};gateway=${toHex(nodeX25519(gs, base))};slice=${board.x25519StepsPerTick};retry=600000;period=3600`,
      gatewayConf: `${common};secret=${toHex(gs)};devices=${kid}:${toHex(nodeX25519(ds, base))}`,
    };
  }
  const id = toHex(bytes("id", 4)), psk = toHex(bytes("psk", 32));
  return { deviceConf: `${common};id=${id};psk=${psk};period=3600`, gatewayConf: `${common};devices=${id}:${psk}` };
}

/**
 * The driver's definitions, sent before the baseline is taken. The board's clock is the driver's: getTime
 * and setInterval are replaced (RT keeps the real getTime, for timing the interpreter), and T(ms) moves the
 * clock on, running each interval that falls due; setTimeout's callbacks run when the line that queued them
 * is over; E.hwRand is a fixed sequence. So every run makes the same calls in the same order and leaves the
 * same memory behind: the search in espruino-memory.ts then finds the same figure every time.
 * BZ adds up the interpreter time spent in the device's code.
 */
function driverLines(prefix: string): string[] {
  const q = JSON.stringify;
  return [
    "echo(0)",
    `var P=${q(prefix)},BZ=0,SV=${q(BLE_SERVICE_UUID)};`,
    `var WR=${q(BLE_WRITE_UUID)},NT=${q(BLE_NOTIFY_UUID)};`,
    // Each line is an event: the timeouts it queued (the bundle's module drops) run when it is over.
    `var TO=[];global.setTimeout=function(f){TO.push(f)};function K(){while(TO.length)TO.shift()();print(P+"K")}`,
    `function V(x){print(P+"V"+x)}`,
    `function H(a){var s="";for(var i=0;i<a.length;i++)s+=(256+a[i]).toString(16).substr(1);return s}`,
    `var NRF={x:{},on:function(e,f){NRF.x[e]=f},setServices:function(s,o){NRF.s=s;NRF.o=o},`,
    `updateServices:function(u){print(P+"N"+H(u[SV][NT].value))}};`,
    `var RT=getTime,VT=0,IV=[],RN=7;global.getTime=function(){return VT};`,
    `global.setInterval=function(f,ms){IV.push({f:f,ms:ms,at:VT*1000+ms})};`,
    `E.hwRand=function(){RN=(RN*1103515245+12345)|0;return RN};`,
    `function D(f,a){var t=RT();f(a);BZ+=RT()-t}`,
    `function T(ms){var e=VT*1000+ms;for(;;){var n=0;for(var i=0;i<IV.length;i++)if(IV[i].at<=e&&(!n||IV[i].at<n.at))n=IV[i];`,
    `if(!n)break;VT=n.at/1000;n.at+=n.ms;D(n.f)}VT=e/1000}`,
    `function W(h){var a=new Uint8Array(h.length/2);for(var i=0;i<a.length;i++)a[i]=parseInt(h.substr(i*2,2),16);D(NRF.s[SV][WR].onWrite,{data:a.buffer})}`,
    `function C(){D(NRF.x.connect)}`,
    // Times are kept in numbers and read at the end: a printed time's length (its digits) would change what
    // the run allocates from one run to the next.
    `var SR=[],SN=0,HZ=0;for(var i=0;i<16;i++)SR.push(0.5);`,
    `function S(){var b=new Uint8Array(4),t=RT();sesame.send(b);SR[SN++&15]=RT()-t}`,
    `function M(){return process.memory().usage}`,
  ];
}

export type Room = { grow: boolean; filler: number };

export type RunResult = {
  loaded: number;
  fillerVars: number;
  base: number;
  totalBefore: number;
  totalAfter: number;
  idle: number;
  hsMs: number;
  hsWallMs: number;
  recordMs: number[];
  samples: [string, number][];
  failure?: string;
};

let spiDraws = 1;

/** The gateway's side, in Node: answers the device's chunks, acknowledges every reading, sends commands. */
class Gateway {
  readonly toDevice: string[] = [];
  readonly received: number[] = [];
  private counter = 0;
  private nextCmd = 1;
  private readonly h: number;
  private readonly rx = bleReassemblerNew(BLE_MAX_PACKET);
  /** The gateway's clock (ms): the device's moves with it (T), so both rekey on the same schedule. */
  time = 0;

  constructor(keys: Keys, private readonly mtu: number) {
    // Its nonces from a fixed sequence too. Its SPIs (the 4-byte draws, firmware/session/spi.ts) are
    // 0x7f0000 + a count: as long in decimal in every run (the device saves one in its session's text), and
    // never one an earlier run's gateway still holds (the facade keeps every endpoint it made).
    let n = 0;
    const random = (k: number) => {
      if (k !== 4) return Uint8Array.from(crypto.createHash("sha256").update(String(n++)).digest().subarray(0, k));
      const spi = 0x7f0000 + (spiDraws++ & 0xffff);
      return Uint8Array.from([0, 0x7f, (spi >> 8) & 0xff, spi & 0xff]);
    };
    facade.facadeInit({ ...hostProvider, random }, facade.memoryStorage(), hostCodec);
    this.h = facade.epCreate("gateway", keys.gatewayConf);
    facade.epStartH(this.h, this.now());
  }

  now(): number {
    return this.time;
  }

  out(): void {
    facade.epPollH(this.h, this.now());
    const out = facade.epOutH(this.h);
    for (const p of out ? out.split(",") : []) {
      const chunks = bleFragment(fromHex(p.split(":")[1])!, this.mtu, this.counter);
      this.counter = (this.counter + chunks.length) & 63;
      for (const c of chunks) this.toDevice.push(toHex(c));
    }
  }

  chunk(hex: string): void {
    const packet = bleAccept(this.rx, fromHex(hex)!);
    if (packet === undefined) return;
    facade.epFeedH(this.h, toHex(packet), 1, this.now());
    const inbox = facade.epInboxH(this.h);
    const ids: number[] = [];
    for (const m of inbox ? inbox.split(",") : []) {
      const b = fromHex(m)!;
      if (messageKind(b) === MSG_DATA) ids.push(messageId(b, 0));
    }
    if (ids.length > 0) {
      this.received.push(...ids);
      facade.epSendH(this.h, toHex(encodeAck(ids)), this.now());
    }
    this.out();
  }

  command(): void {
    facade.epSendH(this.h, toHex(encodeData(this.nextCmd++, Uint8Array.from([2, this.nextCmd & 1]))), this.now());
  }

  /** "state,handshakes,failures,epochOut,epochIn,sent,received,rejected" (facade.epInfoH). */
  info(): number[] {
    return facade.epInfoH(this.h).split(",").map(Number);
  }
}

/** One session on fresh interpreters from the prepared flash (`flash`, copied): part 1, a power cycle, part 2. */
export async function sessionRun(bin: string, flash: string, board: BoardProfile, keys: Keys, room: Room, timing: boolean, timeoutMs: number): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(flash, "..", "run-"));
  fs.copyFileSync(flash, path.join(dir, "espruino.flash"));
  const gw = new Gateway(keys, board.radios.ble?.mtu ?? 23);
  let con = new EspruinoConsole(bin, dir, (hex) => gw.chunk(hex));
  const run = (line: string) => con.run(line, timeoutMs);
  const num = async (line: string) => Number((await run(`V(${line})`))[0]);
  /** Moves both clocks on by `ms`, the device's intervals running as they fall due. */
  const tick = async (ms: number) => {
    gw.time += ms;
    await run(`T(${ms})`);
  };
  /** Feeds the gateway's chunks (10 ms apart) until none are left, then lets `quietMs` pass. */
  const drain = async (quietMs: number) => {
    for (let chunks = 0; ; chunks++) {
      if (chunks > 10_000) throw new Error("session: the gateway and the device never stop talking");
      gw.out();
      const c = gw.toDevice.shift();
      if (c === undefined) break;
      await run(`W("${c}")`);
      await tick(10);
    }
    for (let t = 0; t < quietMs; t += 100) {
      await tick(Math.min(100, quietMs - t));
      gw.out();
      if (gw.toDevice.length > 0) return drain(quietMs - t);
    }
  };
  /** Drains, 100 ms at a time, until `done` (at most `withinMs` of board time). */
  const until = async (done: () => boolean | Promise<boolean>, withinMs: number, what: string) => {
    for (let t = 0; !(await done()); t += 100) {
      if (t > withinMs) throw new Error(`session: ${what} within ${withinMs} ms`);
      await drain(100);
    }
  };
  const recordMs: number[] = [];
  const samples: [string, number][] = [];
  let base = 0, fillerVars = 0, loaded = 0, totalBefore = 0;
  /** A fresh interpreter: the driver, the bundle loaded as the boot code loads it, the filler, the boot. */
  const start = async () => {
    con.raw(driverLines(con.prefix));
    await run("1");
    // Doubles a resizable JsVar table first (a session that does not fit the table the interpreter starts with).
    if (room.grow) await run(`var Z=[];for(var i=process.memory().total;i>=0;i--)Z.push(0);Z=0`);
    base = await num(`M()`);
    loaded = Number((await run(`${BOOT_LOAD}V(M()-${base})`))[0]);
    const before = (await run(`var Z=[];V(process.memory().usage+","+process.memory().total)`))[0].split(",").map(Number);
    totalBefore = before[1];
    fillerVars = room.filler > 0 ? (await num(`(function(){for(var i=0;i<${room.filler};i++)Z.push(0);return M()})()`)) - before[0] : 0;
    const booted = (await run(`V(sesame.boot({require:require}))`))[0];
    if (booted !== "") throw new Error("boot: " + booted);
  };
  let step = "boot";
  const sample = async (what: string) => {
    step = "after " + what;
    if (timing) samples.push([what, await num(`M()-${base}-${fillerVars}`)]);
  };
  const report = async () => (await run(`V(sesame.report())`))[0];
  /** MEMORY: an allocation failed even after a garbage collection (LOW_MEMORY alone only says one ran). */
  const memoryFailure = async () => {
    const flags = (await run(`V(E.getErrorFlags().join(" "))`))[0];
    return / MEMORY|^MEMORY/.test(flags) || con.errors.length > 0 ? `out of memory (${flags}${con.errors.length ? "; " + con.errors[0] : ""})` : undefined;
  };
  const records = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await run(`S()`);
      await drain(20);
    }
  };
  /** The record times so far (read at the end of a part: see driverLines). */
  const recordTimes = async () => {
    const t = (await run(`V(SR.slice(0,Math.min(SN,16)).join(","))`))[0];
    if (t) recordMs.push(...t.split(",").map((x) => Number(x) * 1000));
  };
  const command = async () => {
    gw.command();
    await drain(50);
  };
  let hs: number[] = [NaN, NaN];
  let hsWall = NaN;
  let totalAfter = 0;
  try {
    try {
      await start();
      await tick(100);
      await sample("booted");
      // The handshake: connect, then the gateway's answers, until the device's first record reaches the
      // gateway (an initiator sends one as soon as its session is confirmed: it is then ready).
      step = "handshake";
      const tc = Date.now();
      await run(`BZ=0;C()`);
      // A board that slices X25519 (esp32-espruino) spends x25519StepCalls(steps) ticks of 100 ms
      // (firmware/device.ts) on each of the three it does not make at once: 42 s of board time at 2 steps.
      const sliced = board.x25519StepsPerTick > 0 ? 3 * x25519StepCalls(board.x25519StepsPerTick) * 100 : 0;
      await until(() => gw.info()[6] > 0 && gw.toDevice.length === 0, 10_000 + sliced, "no handshake");
      hsWall = Date.now() - tc;
      await run(`HZ=BZ`);
      if (!(await report()).includes("ready=1")) throw new Error("session: the device is not ready after the handshake: " + (await report()));
      await sample("ready");
      await records(4);
      await sample("4 records");
      await command();
      await sample("command");
      // Both sides move to the next key once rekey=1500 ms have passed, at their next record.
      await drain(REKEY_MS + 100);
      await command();
      await sample("rekeyed");
      await records(4);
      await drain(300);
      const info = gw.info();
      if (info[3] <= 0 || info[4] <= 0) throw new Error(`session: no rekey happened (gateway epochs out ${info[3]}, in ${info[4]})`);
      if (gw.received.length < 8) throw new Error(`session: the gateway received ${gw.received.length} readings, expected at least 8`);
      const oom = await memoryFailure();
      if (oom) throw new Error("part 1: " + oom);
      hs = [Number((await run(`V(HZ*1000)`))[0]), hsWall];
      await recordTimes();
      totalAfter = await num(`process.memory().total`);
      // The power cycle: what the board saved in Storage is all that survives.
      await con.close();
      con = new EspruinoConsole(bin, dir, (hex) => gw.chunk(hex));
      step = "boot after the power cycle";
      await start();
      await tick(100);
      await sample("powered up");
      const got = gw.received.length;
      await run(`C()`);
      await records(4);
      // The first acknowledgement is refused (the restored receiving key waits for the gateway's next one):
      // the readings come again after the device's retransmission timeout, then everything is acknowledged.
      await until(async () => gw.received.length >= got + 4 && /;acked=[1-9]/.test(await report()), 30_000, "the readings after the power cycle were not acknowledged");
      await command();
      await drain(300);
      await sample("resumed");
      const r = await report();
      if (!r.includes("ready=1") || !r.includes("handshakes=0")) throw new Error("part 2: the device did not resume its session: " + r);
      const oom2 = await memoryFailure();
      if (oom2) throw new Error("part 2: " + oom2);
      await recordTimes();
    } catch (e) {
      // A session that runs out of room fails on the interpreter as on a board: an allocation fails (a fixed
      // table), or a native call that needs a flat (contiguous) buffer, such as AES.encrypt's result, finds
      // none after a garbage collection and its caller sees undefined. In a filler run any failure counts as
      // "did not fit" (the run without filler must pass).
      if (timing) throw e;
      const total = await num(`process.memory().total`).catch(() => NaN);
      return { loaded, fillerVars, base, totalBefore, totalAfter: Math.max(total, totalAfter), idle: NaN, hsMs: NaN, hsWallMs: NaN, recordMs, samples, failure: `${step}: ` + String(e).split("\n").slice(0, 2).join(" ") };
    }
    const end = (await run(`V(M()-${base}-${fillerVars});V(process.memory().total)`)).map(Number);
    return { loaded, fillerVars, base, totalBefore, totalAfter: Math.max(end[1], totalAfter), idle: end[0], hsMs: hs[0], hsWallMs: hsWall, recordMs, samples };
  } finally {
    await con.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
