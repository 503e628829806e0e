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
import { BLE_NOTIFY_UUID, BLE_SERVICE_UUID, BLE_WRITE_UUID, bleAccept, bleFragment, bleReassemblerNew, BLE_MAX_PACKET } from "../../firmware/link/ble";
import * as facade from "../../firmware/runtime/facade";
import { encodeAck, encodeData, messageId, messageKind, MSG_DATA } from "../../firmware/runtime/messages";
import { BOOT_LOAD } from "../../scripts/lib/flash-espruino";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import { EspruinoConsole } from "./espruino-console";

export const REKEY_MS = 1500;

export type Keys = { deviceConf: string; gatewayConf: string };

export function sessionKeys(board: BoardProfile): Keys {
  const common = `mode=${board.handshake};order=I;rekey=${REKEY_MS}`;
  if (board.handshake === "dh") {
    const gk = nodeKeyPair(), dk = nodeKeyPair();
    const kid = crypto.randomBytes(4).toString("hex");
    return {
      // A sliced X25519 (the profile's steps per 100 ms tick) takes longer than the default retry (5 s), so
      // the device would start over before finishing: the retry is raised to let the handshake complete.
      deviceConf: `${common};kid=${kid};secret=${toHex(dk.s)};gateway=${toHex(gk.S)};slice=${board.x25519StepsPerTick};retry=600000;period=3600`,
      gatewayConf: `${common};secret=${toHex(gk.s)};devices=${kid}:${toHex(dk.S)}`,
    };
  }
  const id = crypto.randomBytes(4).toString("hex"), psk = crypto.randomBytes(32).toString("hex");
  return { deviceConf: `${common};id=${id};psk=${psk};period=3600`, gatewayConf: `${common};devices=${id}:${psk}` };
}

/** The driver's definitions, sent before the baseline is taken. `timing` adds busy-time accounting to timers. */
function driverLines(prefix: string, timing: boolean): string[] {
  const q = JSON.stringify;
  return [
    "echo(0)",
    `var P=${q(prefix)},BZ=0,SV=${q(BLE_SERVICE_UUID)};`,
    `var WR=${q(BLE_WRITE_UUID)},NT=${q(BLE_NOTIFY_UUID)};`,
    `function K(){print(P+"K")}`,
    `function V(x){print(P+"V"+x)}`,
    `function H(a){var s="";for(var i=0;i<a.length;i++)s+=(256+a[i]).toString(16).substr(1);return s}`,
    `var NRF={x:{},on:function(e,f){NRF.x[e]=f},setServices:function(s,o){NRF.s=s;NRF.o=o},`,
    `updateServices:function(u){print(P+"N"+H(u[SV][NT].value))}};`,
    `function W(h){var a=new Uint8Array(h.length/2);for(var i=0;i<a.length;i++)a[i]=parseInt(h.substr(i*2,2),16);`,
    `var t=getTime();NRF.s[SV][WR].onWrite({data:a.buffer});BZ+=getTime()-t}`,
    `function C(){var t=getTime();NRF.x.connect();BZ+=getTime()-t}`,
    `function S(){var b=new Uint8Array(4),t=getTime();sesame.send(b);V("S"+(getTime()-t))}`,
    `function M(){return process.memory().usage}`,
    ...(timing ? [`var SI=setInterval;global.setInterval=function(f,ms){return SI(function(){var t=getTime();f();BZ+=getTime()-t},ms)}`] : []),
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The gateway's side, in Node: answers the device's chunks, acknowledges every reading, sends commands. */
class Gateway {
  readonly toDevice: string[] = [];
  readonly received: number[] = [];
  private counter = 0;
  private nextCmd = 1;
  private readonly h: number;
  private readonly rx = bleReassemblerNew(BLE_MAX_PACKET);
  private readonly t0 = Date.now();

  constructor(keys: Keys, private readonly mtu: number) {
    facade.facadeInit(hostProvider, facade.memoryStorage());
    this.h = facade.epCreate("gateway", keys.gatewayConf);
    facade.epStartH(this.h, this.now());
  }

  now(): number {
    return Date.now() - this.t0;
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
  /** Feeds the gateway's chunks until none are left and the device has been quiet for `quietMs`. */
  const drain = async (quietMs: number, until?: () => boolean) => {
    const stop = Date.now() + timeoutMs;
    let quietSince = Date.now();
    while (Date.now() < stop) {
      gw.out();
      const c = gw.toDevice.shift();
      if (c !== undefined) {
        await run(`W("${c}")`);
        quietSince = Date.now();
        continue;
      }
      if (until ? until() : Date.now() - quietSince >= quietMs) return;
      await sleep(5);
    }
    throw new Error("session: timed out waiting for the device");
  };
  const recordMs: number[] = [];
  const samples: [string, number][] = [];
  let base = 0, fillerVars = 0, loaded = 0, totalBefore = 0;
  /** A fresh interpreter: the driver, the bundle loaded as the boot code loads it, the filler, the boot. */
  const start = async () => {
    con.raw(driverLines(con.prefix, timing));
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
      recordMs.push(Number((await run(`S()`))[0].slice(1)) * 1000);
      await drain(20);
    }
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
      await sample("booted");
      // The handshake: connect, then the gateway's answers, until the device's first record reaches the
      // gateway (an initiator sends one as soon as its session is confirmed: it is then ready).
      const tc = Date.now();
      step = "handshake";
      await run(`BZ=0;var T0=getTime();C()`);
      await drain(0, () => gw.info()[6] > 0 && gw.toDevice.length === 0);
      hs = (await run(`V(BZ*1000);V((getTime()-T0)*1000)`)).map(Number);
      hsWall = timing ? hs[1] : Date.now() - tc;
      if (!(await report()).includes("ready=1")) throw new Error("session: the device is not ready after the handshake: " + (await report()));
      await sample("ready");
      await records(4);
      await sample("4 records");
      await command();
      await sample("command");
      const rekeyAt = Date.now() + REKEY_MS + 100;
      while (Date.now() < rekeyAt) await drain(100);
      await command();
      await sample("rekeyed");
      await records(4);
      await drain(300);
      const info = gw.info();
      if (info[3] <= 0 || info[4] <= 0) throw new Error(`session: no rekey happened (gateway epochs out ${info[3]}, in ${info[4]})`);
      if (gw.received.length < 8) throw new Error(`session: the gateway received ${gw.received.length} readings, expected at least 8`);
      const oom = await memoryFailure();
      if (oom) throw new Error("part 1: " + oom);
      totalAfter = await num(`process.memory().total`);
      // The power cycle: what the board saved in Storage is all that survives.
      await con.close();
      con = new EspruinoConsole(bin, dir, (hex) => gw.chunk(hex));
      step = "boot after the power cycle";
      await start();
      await sample("powered up");
      const got = gw.received.length;
      await run(`C()`);
      await records(4);
      // The first acknowledgement is refused (the restored receiving key waits for the gateway's next one):
      // the readings come again after the device's retransmission timeout, then everything is acknowledged.
      const stop = Date.now() + timeoutMs;
      while (!(gw.received.length >= got + 4 && /;acked=[1-9]/.test(await report()))) {
        if (Date.now() > stop) throw new Error(`part 2: the gateway received ${gw.received.length - got} readings after the power cycle: ${await report()}`);
        await drain(200);
      }
      await command();
      await drain(300);
      await sample("resumed");
      const r = await report();
      if (!r.includes("ready=1") || !r.includes("handshakes=0")) throw new Error("part 2: the device did not resume its session: " + r);
      const oom2 = await memoryFailure();
      if (oom2) throw new Error("part 2: " + oom2);
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
