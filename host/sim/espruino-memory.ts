// A board's bundle on the real Espruino interpreter (the Linux build named by ESPRUINO_BIN), loaded and run
// the way a board runs it, for the figures issue 4 asks for: JsVars after loading the bundle from Storage,
// the JsVar high-water mark of a whole session, the handshake time and the time per sealed record.
//
// How a run goes (one interpreter process per run, in a temp directory so its Storage is its own):
//   1. a script writes the bundle to Storage as "sesame.js" and the device configuration as "sesame.cfg"
//      (the Linux build keeps Storage in ./espruino.flash); each later run starts from a copy of that flash;
//   2. the interactive interpreter is driven over stdin, one short line at a time (its console is
//      line-based and limited in line length), each line answered by a marked line on stdout:
//      a fake `NRF` (setServices keeps the write characteristic, updateServices prints the notified chunk,
//      NRF.on keeps the connect handler), then `eval(require("Storage").read("sesame.js"))` as on a board,
//      then the real boot path `sesame.boot({ require: require })`;
//   3. the session: the connect handler, then the gateway's packets as BLE chunks into the write
//      characteristic's onWrite. The gateway runs here in Node (firmware/runtime/facade.ts with the host
//      provider); it acknowledges every reading, sends commands, and both sides rekey once (rekey=1500 ms
//      on both), so the session covers the handshake, records both ways, acknowledgements, a command,
//      the saved session and both rekey paths. The sensor reports every second meanwhile.
//
// The high-water mark: the Linux build grows its JsVar table (doubling it) only when it is full AND a
// garbage collection freed nothing, so "the table grew" means "live JsVars reached the total". A run that
// first fills the table with a known number of JsVars (a filler array) and then runs the session tells
// whether the session fitted in what was left; a binary search over the filler finds the smallest room the
// session fits in: that is the session's real peak, transient buffers included (sampling
// process.memory() between steps would miss those). A run that fails counts as not fitting too: near the
// limit a native call that needs a contiguous buffer (AES.encrypt's result) fails after a garbage
// collection leaves none, without the table growing, as it would on a board. The figure counts every JsVar above the interpreter's
// empty state: the bundle's code, the runtime, the session, and the few the driver's own lines take.
//
// Counts are approximate for a board: the Linux build's JsVar is 27 bytes (an nRF52's is smaller), so
// strings and typed arrays take fewer JsVars here than on a Puck.js; functions, object properties, array
// elements and numbers take the same.
import { spawn, ChildProcessWithoutNullStreams } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BoardProfile } from "../../firmware/board";
import { fromHex, toHex } from "../../firmware/bytes";
import { BLE_NOTIFY_UUID, BLE_SERVICE_UUID, BLE_WRITE_UUID, bleAccept, bleFragment, bleReassemblerNew, BLE_MAX_PACKET } from "../../firmware/link/ble";
import * as facade from "../../firmware/runtime/facade";
import { encodeAck, encodeData, messageId, messageKind, MSG_DATA } from "../../firmware/runtime/messages";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import { hostCodec } from "../record/gpcomp";
import { espruinoBinary, espruinoUnavailableReason } from "./espruino-native";

export type BoardFigures = {
  board: string;
  bundleBytes: number;
  /** JsVars the bundle takes once loaded from Storage (before boot). */
  loaded: number;
  /** JsVars in use at the session's high-water mark (bundle included), or undefined when not searched. */
  peak: number | undefined;
  /** Resolution of `peak` (the filler step where the search stopped). */
  peakResolution: number;
  /** JsVars in use (after a garbage collection) at the end of the session. */
  idle: number;
  /** The profile's memory.jsVars. */
  budget: number;
  /** Interpreter time spent on the device side from connect to session ready (ms). */
  handshakeMs: number;
  /** Wall time from connect to ready, gateway and pipes included (ms). */
  handshakeWallMs: number;
  /** Median interpreter time of one `sesame.send` (queue, seal, BLE chunks, notify) (ms). */
  recordMs: number;
  runs: number;
  /** JsVars in use (after a garbage collection) between the steps of the first run. */
  samples: [string, number][];
};

export type MeasureOptions = {
  /** Search the high-water mark (several runs); default true. */
  peak?: boolean;
  /** Stop the search when the filler interval is this narrow (JsVars); default 4. */
  resolution?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Timeout of one run (ms). */
  runTimeoutMs?: number;
};

const REKEY_MS = 1500;

export type Keys = { deviceConf: string; gatewayConf: string };

export function sessionKeys(board: BoardProfile): Keys {
  const common = `mode=${board.handshake};order=I;rekey=${REKEY_MS}`;
  if (board.handshake === "dh") {
    const gk = nodeKeyPair(), dk = nodeKeyPair();
    const kid = crypto.randomBytes(4).toString("hex");
    return {
      // A sliced X25519 (the profile's steps per 100 ms tick) takes longer than the default retry (5 s), so
      // the device would start over before finishing: the retry is raised to let the handshake complete.
      deviceConf: `${common};kid=${kid};secret=${toHex(dk.s)};gateway=${toHex(gk.S)};slice=${board.x25519StepsPerTick};retry=600000;period=1`,
      gatewayConf: `${common};secret=${toHex(gk.s)};devices=${kid}:${toHex(dk.S)}`,
    };
  }
  const id = crypto.randomBytes(4).toString("hex"), psk = crypto.randomBytes(32).toString("hex");
  return { deviceConf: `${common};id=${id};psk=${psk};period=1`, gatewayConf: `${common};devices=${id}:${psk}` };
}

/** Runs a script file once (no console): for writing Storage. */
function runScript(bin: string, cwd: string, script: string, timeoutMs: number): Promise<string> {
  const file = path.join(cwd, "setup.js");
  fs.writeFileSync(file, script);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [file], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
    child.stderr.on("data", (d: Buffer) => (out += d.toString("latin1")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", () => {
      clearTimeout(timer);
      fs.rmSync(file, { force: true });
      resolve(out);
    });
  });
}

/** The interactive interpreter: one line in, its marked answers out. */
class Console {
  private child: ChildProcessWithoutNullStreams;
  private buf = "";
  private tail: string[] = [];
  private waiting: { resolve: (v: string[]) => void; reject: (e: Error) => void; values: string[] } | undefined;
  private closed = false;
  readonly prefix = "@" + crypto.randomBytes(2).toString("hex") + "@";

  constructor(bin: string, cwd: string, private onChunk: (hex: string) => void) {
    this.child = spawn(bin, [], { cwd, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (d: Buffer) => this.data(d.toString("latin1")));
    this.child.stderr.on("data", () => undefined);
    this.child.on("close", () => {
      this.closed = true;
      this.waiting?.reject(new Error("the interpreter stopped:\n" + this.tail.join("\n")));
      this.waiting = undefined;
    });
  }

  private data(s: string): void {
    this.buf += s;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, "");
      this.buf = this.buf.slice(nl + 1);
      this.line(line);
    }
  }

  private line(line: string): void {
    const at = line.indexOf(this.prefix);
    if (at < 0) {
      if (line.trim()) this.tail = [...this.tail.slice(-12), line];
      if (/Uncaught|OUT OF MEMORY/.test(line) && this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        setTimeout(() => w.reject(new Error("Espruino: " + line + "\n" + this.tail.join("\n"))), 50);
      }
      return;
    }
    const body = line.slice(at + this.prefix.length);
    const kind = body[0], rest = body.slice(1);
    if (kind === "N") this.onChunk(rest);
    else if (kind === "V") this.waiting?.values.push(rest);
    else if (kind === "K" && this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve(w.values);
    }
  }

  /** Sends one line (kept short) followed by the acknowledgement; resolves with the V values it printed. */
  run(line: string, timeoutMs = 120_000): Promise<string[]> {
    if (this.closed) return Promise.reject(new Error("the interpreter stopped:\n" + this.tail.join("\n")));
    if (this.waiting) return Promise.reject(new Error("one line at a time"));
    const text = line + ";K()";
    if (text.length > 200) return Promise.reject(new Error(`console line too long (${text.length}): ${line.slice(0, 60)}...`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no answer to ${JSON.stringify(line.slice(0, 80))} in ${timeoutMs} ms\n` + this.tail.join("\n")));
      }, timeoutMs);
      this.waiting = {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
        values: [],
      };
      this.child.stdin.write(text + "\n");
    });
  }

  /** Sends raw lines (a definition spread over lines) without an acknowledgement. */
  raw(lines: string[]): void {
    for (const l of lines) {
      if (l.length > 200) throw new Error("console line too long: " + l.slice(0, 60));
      this.child.stdin.write(l + "\n");
    }
  }

  close(): void {
    if (!this.closed) this.child.kill("SIGKILL");
  }
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
    `var NRF={x:{},on:function(e,f){NRF.x[e]=f},setServices:function(s){NRF.w=s[SV][WR]},`,
    `updateServices:function(u){print(P+"N"+H(u[SV][NT].value))}};`,
    `function W(h){var a=new Uint8Array(h.length/2);for(var i=0;i<a.length;i++)a[i]=parseInt(h.substr(i*2,2),16);`,
    `var t=getTime();NRF.w.onWrite({data:a.buffer});BZ+=getTime()-t}`,
    `function C(){var t=getTime();NRF.x.connect();BZ+=getTime()-t}`,
    `function S(){var b=new Uint8Array(4),t=getTime();sesame.send(b);V("S"+(getTime()-t))}`,
    ...(timing ? [`var SI=setInterval;global.setInterval=function(f,ms){return SI(function(){var t=getTime();f();BZ+=getTime()-t},ms)}`] : []),
  ];
}

type RunResult = { loaded: number; fillerVars: number; base: number; totalBefore: number; totalAfter: number; idle: number; hsMs: number; hsWallMs: number; recordMs: number[]; samples: [string, number][]; failure?: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One session on a fresh interpreter from the prepared flash. `filler`: JsVars to take before boot. */
export async function sessionRun(bin: string, flash: string, board: BoardProfile, keys: Keys, room: { grow: boolean; filler: number }, timing: boolean, timeoutMs: number): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-mem-"));
  fs.copyFileSync(flash, path.join(dir, "espruino.flash"));
  const mtu = board.radios.ble?.mtu ?? 23;
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  // The gateway, in Node.
  facade.facadeInit(hostProvider, facade.memoryStorage(), hostCodec);
  const gh = facade.epCreate("gateway", keys.gatewayConf);
  facade.epStartH(gh, now());
  const rx = bleReassemblerNew(BLE_MAX_PACKET);
  let counter = 0;
  const toDevice: string[] = [];
  const received: number[] = [];
  let nextCmd = 1;
  const gatewayOut = () => {
    facade.epPollH(gh, now());
    const out = facade.epOutH(gh);
    for (const p of out ? out.split(",") : []) {
      const bytes = fromHex(p.split(":")[1])!;
      const chunks = bleFragment(bytes, mtu, counter);
      counter = (counter + chunks.length) & 63;
      for (const c of chunks) toDevice.push(toHex(c));
    }
  };
  const onChunk = (hex: string) => {
    const packet = bleAccept(rx, fromHex(hex)!);
    if (packet === undefined) return;
    facade.epFeedH(gh, toHex(packet), 1, now());
    const inbox = facade.epInboxH(gh);
    const ids: number[] = [];
    for (const m of inbox ? inbox.split(",") : []) {
      const b = fromHex(m)!;
      if (messageKind(b) === MSG_DATA) ids.push(messageId(b, 0));
    }
    if (ids.length > 0) {
      received.push(...ids);
      facade.epSendH(gh, toHex(encodeAck(ids)), now());
    }
    gatewayOut();
  };
  const con = new Console(bin, dir, onChunk);
  const run = (line: string) => con.run(line, timeoutMs);
  /** Feeds the gateway's chunks until none are left and the device has been quiet for `quietMs`. */
  const drain = async (quietMs: number, until?: () => boolean) => {
    const stop = Date.now() + timeoutMs;
    let quietSince = Date.now();
    while (Date.now() < stop) {
      gatewayOut();
      const c = toDevice.shift();
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
  try {
    con.raw(driverLines(con.prefix, timing));
    await run("1");
    // Doubles the JsVar table first (a session that does not fit the table the interpreter starts with).
    if (room.grow) await run(`var Z=[];for(var i=process.memory().total;i>=0;i--)Z.push(0);Z=0`);
    const base = Number((await run(`V(process.memory().usage)`))[0]);
    const loaded = Number((await run(`eval(require("Storage").read("sesame.js"));V(process.memory().usage-${base})`))[0]);
    const before = (await run(`var Z=[];V(process.memory().usage+","+process.memory().total)`))[0].split(",").map(Number);
    let fillerVars = 0;
    if (room.filler > 0) {
      const after = Number((await run(`for(var i=0;i<${room.filler};i++)Z.push(0);V(process.memory().usage)`))[0]);
      fillerVars = after - before[0];
    }
    let hs: string[] = [];
    let hsWall = 0;
    const recordMs: number[] = [];
    const samples: [string, number][] = [];
    try {
      const booted = (await run(`V(sesame.boot({require:require}))`))[0];
      if (booted !== "") throw new Error("boot: " + booted);
      const sample = async (what: string) => {
        if (timing) samples.push([what, Number((await run(`V(process.memory().usage-${base}-${fillerVars})`))[0])]);
      };
      await sample("booted");
      // The handshake: connect, then the gateway's answers, until the device's first record reaches the
      // gateway (an initiator sends one as soon as its session is confirmed: it is then ready).
      const tc = Date.now();
      await run(`BZ=0;var T0=getTime();C()`);
      await drain(0, () => Number(facade.epInfoH(gh).split(",")[6]) > 0 && toDevice.length === 0);
      hs = (await run(`V(BZ*1000);V((getTime()-T0)*1000)${timing ? ';V(sesame.report().indexOf("ready=1")>=0)' : ""}`));
      if (timing && hs[2] !== "true") throw new Error("session: the device is not ready after the handshake: " + (await run(`V(sesame.report())`))[0]);
      hsWall = Date.now() - tc;
      await sample("ready");
      // Records both ways, a command, a rekey on both sides, more records.
      const records = async (n: number) => {
        for (let i = 0; i < n; i++) {
          recordMs.push(Number((await run(`S()`))[0].slice(1)) * 1000);
          await drain(20);
        }
      };
      const command = async () => {
        facade.epSendH(gh, toHex(encodeData(nextCmd++, Uint8Array.from([2, nextCmd & 1]))), now());
        await drain(50);
      };
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
      const info = facade.epInfoH(gh).split(",");
      if (info[3] === "0" || info[4] === "0") throw new Error(`session: no rekey happened (gateway epochs out ${info[3]}, in ${info[4]})`);
      if (received.length < 8) throw new Error(`session: the gateway received ${received.length} readings, expected at least 8`);
    } catch (e) {
      // A session that runs out of room fails on the interpreter as on a board: the Linux build grows its
      // table only for ordinary allocations, but a native call that needs a flat (contiguous) buffer, such
      // as AES.encrypt's result, fails when a garbage collection leaves none, and the caller then sees
      // undefined. In a filler run any failure counts as "did not fit" (the run without filler must pass).
      if (timing) throw e;
      const total = Number((await run(`V(process.memory().total)`))[0]);
      return { loaded, fillerVars, base, totalBefore: before[1], totalAfter: total, idle: NaN, hsMs: NaN, hsWallMs: NaN, recordMs, samples, failure: String(e).split("\n").slice(0, 2).join(" ") };
    }
    const end = (await run(`V(process.memory().usage-${base}-${fillerVars});V(process.memory().total)`)).map(Number);
    return {
      loaded, fillerVars, base, totalBefore: before[1], totalAfter: end[1], idle: end[0], hsMs: Number(hs[0]), hsWallMs: timing ? Number(hs[1]) : hsWall,
      recordMs, samples,
    };
  } finally {
    con.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Measures one Espruino board's bundle on the interpreter named by ESPRUINO_BIN. */
export async function measureEspruinoBoard(board: BoardProfile, bundleCode: string, opts: MeasureOptions = {}): Promise<BoardFigures> {
  const bin = espruinoBinary();
  if (!bin) throw new Error(espruinoUnavailableReason());
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.runTimeoutMs ?? 600_000;
  const keys = sessionKeys(board);
  const prep = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-flash-"));
  try {
    const q = JSON.stringify;
    const out = await runScript(bin, prep, `var S=require("Storage");S.write("sesame.js",${q(bundleCode)});S.write("sesame.cfg",${q(keys.deviceConf)});` +
      `print(S.read("sesame.js").length===${bundleCode.length}?"@stored@":"@short@")\n`, 60_000);
    if (!out.includes("@stored@")) throw new Error("could not write the bundle to Storage:\n" + out.split("\n").slice(-6).join("\n"));
    const flash = path.join(prep, "espruino.flash");
    let runs = 1;
    log(`${board.name}: timing run`);
    const first = await sessionRun(bin, flash, board, keys, { grow: false, filler: 0 }, true, timeoutMs);
    let peak: number | undefined;
    let resolution = 0;
    if (opts.peak ?? true) {
      const step = opts.resolution ?? 4;
      // Runs without a filler must fit in the table as it starts; if not, grow it first (8192 JsVars).
      let grow = false;
      const probe = async (filler: number) => {
        runs++;
        const r = await sessionRun(bin, flash, board, keys, { grow, filler }, false, timeoutMs);
        const fits = r.failure === undefined && r.totalAfter === r.totalBefore;
        log(`${board.name}: filler ${filler} (${r.fillerVars} JsVars): ${fits ? "fits" : r.failure ? "failed" : "grew"} (total ${r.totalBefore} -> ${r.totalAfter})${r.failure ? "; " + r.failure : ""}`);
        return { fits, r };
      };
      let zero = await probe(0);
      if (!zero.fits) {
        if (zero.r.failure !== undefined && zero.r.totalAfter === zero.r.totalBefore) throw new Error(`${board.name}: the session failed: ${zero.r.failure}`);
        grow = true;
        zero = await probe(0);
        if (!zero.fits) throw new Error(`${board.name}: the session does not fit 8192 JsVars${zero.r.failure ? ": " + zero.r.failure : ""}`);
      }
      // room at boot = total - base - loaded - filler; search the largest filler that still fits.
      let lo = 0; // fits
      let loR = zero.r;
      let hi = zero.r.totalBefore - zero.r.base - zero.r.loaded; // surely does not fit
      while (hi - lo > step) {
        const mid = (lo + hi) >> 1;
        const p = await probe(mid);
        if (p.fits) {
          lo = mid;
          loR = p.r;
        } else hi = mid;
      }
      // The session fitted in total - base - fillerVars: everything above the empty interpreter.
      peak = loR.totalBefore - loR.base - loR.fillerVars;
      resolution = hi - lo;
    }
    return {
      board: board.name, bundleBytes: Buffer.byteLength(bundleCode), loaded: first.loaded, peak, peakResolution: resolution, idle: first.idle,
      budget: board.memory.jsVars ?? 0, handshakeMs: first.hsMs, handshakeWallMs: first.hsWallMs, recordMs: median(first.recordMs), runs, samples: first.samples,
    };
  } finally {
    fs.rmSync(prep, { recursive: true, force: true });
  }
}
