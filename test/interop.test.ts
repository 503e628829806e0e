// The interop matrix: a device and a gateway endpoint in every pairing of host (node:crypto), the Espruino
// bundle (Espruino-shaped sandbox, emulated firmware crypto), and the Lua bundle under wasmoon (64-bit
// integers) and fengari (32-bit integers, X25519 through the sodium binding): both modes, both orders.
// Each pairing handshakes, carries data both ways, crosses a rekey at the end of the 2^20 sequence space,
// survives the loss of one of its two transports, and follows a KEY_UPDATE request that must be repeated.
import assert from "node:assert/strict";
import * as vm from "node:vm";
import { randomBytes } from "node:crypto";
import { hostProvider, nodeKeyPair } from "../host/crypto/provider";
import { hostCodec } from "../host/record/gpcomp";
import * as facade from "../firmware/runtime/facade";
import { ensureBuilt, readArtefact } from "./harness/build-once";
import { loadEspruino } from "../host/sim/espruino-sandbox";
import { loadFengari, loadWasmoon } from "../host/sim/lua-runtime";
import type { BoardProfile } from "../firmware/board";
import { readFileSync } from "node:fs";

/** The string endpoint API of firmware/runtime/facade.ts, wherever it runs. */
type Party = {
  name: string;
  create(role: string, conf: string): number;
  start(h: number, now: number): void;
  feed(h: number, hex: string, tid: number, now: number): void;
  poll(h: number, now: number): void;
  out(h: number): string;
  send(h: number, hex: string, now: number): boolean;
  inbox(h: number): string;
  ready(h: number): boolean;
  setSeq(h: number, seq: number): void;
  transport(h: number, op: string, tid: number): void;
  restore(h: number, now: number): void;
  info(h: number): string;
};

const hexq = (s: string) => JSON.stringify(s);

function hostParty(): Party {
  facade.facadeInit(hostProvider, facade.memoryStorage(), hostCodec);
  return {
    name: "host",
    create: facade.epCreate, start: facade.epStartH, feed: (h, x, t, n) => void facade.epFeedH(h, x, t, n), poll: (h, n) => void facade.epPollH(h, n),
    out: facade.epOutH, send: facade.epSendH, inbox: facade.epInboxH, ready: facade.epReadyH, setSeq: facade.epSetSeqH,
    transport: facade.epTransportH, restore: facade.epRestoreH, info: facade.epInfoH,
  };
}

function espruinoParty(board: string): Party {
  const profile = JSON.parse(readFileSync(`boards/${board}.json`, "utf8")) as BoardProfile;
  const sb = loadEspruino(readArtefact("espruino/endpoints.js"), { nativeCrypto: profile.nativeCrypto, filename: "dist/espruino/endpoints.js" });
  const run = (js: string) => vm.runInContext(js, sb.context);
  run(`sesame.init({ crypto: require("crypto"), hwRand: E.hwRand }, undefined, ${JSON.stringify(profile.nativeCrypto)}, require)`);
  return {
    name: `espruino(${board})`,
    create: (r, c) => run(`sesame.epCreate(${hexq(r)}, ${hexq(c)})`),
    start: (h, n) => run(`sesame.epStartH(${h}, ${n})`),
    feed: (h, x, t, n) => run(`sesame.epFeedH(${h}, ${hexq(x)}, ${t}, ${n})`),
    poll: (h, n) => run(`sesame.epPollH(${h}, ${n})`),
    out: (h) => run(`sesame.epOutH(${h})`),
    send: (h, x, n) => run(`sesame.epSendH(${h}, ${hexq(x)}, ${n})`),
    inbox: (h) => run(`sesame.epInboxH(${h})`),
    ready: (h) => run(`sesame.epReadyH(${h})`),
    setSeq: (h, s) => run(`sesame.epSetSeqH(${h}, ${s})`),
    transport: (h, op, t) => run(`sesame.epTransportH(${h}, ${hexq(op)}, ${t})`),
    restore: (h, n) => run(`sesame.epRestoreH(${h}, ${n})`),
    info: (h) => run(`sesame.epInfoH(${h})`),
  };
}

function luaParty(name: string, lua: { eval(src: string): string }, native: BoardProfile["nativeCrypto"]): Party {
  const table = "{" + Object.entries(native).map(([k, v]) => `${k} = ${v}`).join(", ") + "}";
  lua.eval(`sesame.init({ crypto = crypto, sodium = sodium }, nil, ${table}); return ""`);
  const q = (s: string) => JSON.stringify(s);
  const ev = (src: string) => lua.eval(`return tostring((${src}))`);
  return {
    name,
    create: (r, c) => Number(ev(`sesame.epCreate(${q(r)}, ${q(c)})`)),
    start: (h, n) => void ev(`sesame.epStartH(${h}, ${n})`),
    feed: (h, x, t, n) => void ev(`sesame.epFeedH(${h}, ${q(x)}, ${t}, ${n})`),
    poll: (h, n) => void ev(`sesame.epPollH(${h}, ${n})`),
    out: (h) => ev(`sesame.epOutH(${h})`),
    send: (h, x, n) => ev(`sesame.epSendH(${h}, ${q(x)}, ${n})`) === "true",
    inbox: (h) => ev(`sesame.epInboxH(${h})`),
    ready: (h) => ev(`sesame.epReadyH(${h})`) === "true",
    setSeq: (h, s) => void ev(`sesame.epSetSeqH(${h}, ${s})`),
    transport: (h, op, t) => void ev(`sesame.epTransportH(${h}, ${q(op)}, ${t})`),
    restore: (h, n) => void ev(`sesame.epRestoreH(${h}, ${n})`),
    info: (h) => ev(`sesame.epInfoH(${h})`),
  };
}

/** Moves packets between a device and a gateway until both are quiet; `lose(tid)` drops a transport's packets. */
function pump(d: Party, dh: number, g: Party, gh: number, now: number, lose: (tid: number) => boolean = () => false): void {
  for (let round = 0; round < 200; round++) {
    d.poll(dh, now);
    g.poll(gh, now);
    const a = d.out(dh), b = g.out(gh);
    if (!a && !b) return;
    for (const p of a ? a.split(",") : []) { const [t, x] = p.split(":"); if (!lose(+t)) g.feed(gh, x, +t, now); }
    for (const p of b ? b.split(",") : []) { const [t, x] = p.split(":"); if (!lose(+t)) d.feed(dh, x, +t, now); }
  }
}

const hex = (s: string) => Buffer.from(s).toString("hex");
const text = (inbox: string) => (inbox ? inbox.split(",").map((x) => Buffer.from(x, "hex").toString()) : []);

/** A device and a gateway endpoint with fresh keys, handshaken; `extra` is added to the device's configuration. */
function connect(d: Party, g: Party, mode: string, order: string, extra: string): { dh: number; gh: number } {
  const gk = nodeKeyPair(), dk = nodeKeyPair();
  const kid = randomBytes(4).toString("hex"), id = randomBytes(4).toString("hex"), psk = randomBytes(32).toString("hex");
  const h = (b: Uint8Array) => Buffer.from(b).toString("hex");
  const common = `mode=${mode};order=${order};retry=3000`;
  const dconf = (mode === "dh" ? `${common};kid=${kid};secret=${h(dk.s)};gateway=${h(gk.S)}` : `${common};id=${id};psk=${psk}`) + extra;
  const gconf = mode === "dh" ? `${common};secret=${h(gk.s)};devices=${kid}:${h(dk.S)}` : `${common};devices=${id}:${psk}`;
  const gh = g.create("gateway", gconf), dh = d.create("device", dconf);
  g.start(gh, 0);
  d.start(dh, 0);
  pump(d, dh, g, gh, 0);
  assert.ok(d.ready(dh) && g.ready(gh), `not established: device ${d.info(dh)} gateway ${g.info(gh)}`);
  return { dh, gh };
}

describe("interop matrix: host <-> Espruino bundle <-> Lua bundles (64-bit and 32-bit integers)", function () {
  this.timeout(600_000);
  const parties = new Map<string, (mode: string) => Party>();
  const closers: (() => void)[] = [];
  before(async function () {
    const { error } = await ensureBuilt();
    assert.equal(error, undefined, error);
    const lua = readArtefact("lua/endpoints.lua");
    const native = (JSON.parse(readFileSync("boards/esp32-nodemcu-lora.json", "utf8")) as BoardProfile).nativeCrypto;
    const w = await loadWasmoon(lua, { nodemcu: true, chunkName: "endpoints.lua" });
    closers.push(w.close);
    const f = loadFengari(lua, { nodemcu: true, chunkName: "endpoints.lua" });
    const wasmoon = luaParty("wasmoon (Lua, 64-bit)", w, native);
    const fengari = luaParty("fengari (Lua, 32-bit)", f, native);
    const host = hostParty();
    const esp = { dh: espruinoParty("esp32-espruino"), psk: espruinoParty("puckjs") };
    parties.set("host", () => host);
    parties.set("espruino", (mode) => esp[mode as "dh" | "psk"]);
    parties.set("wasmoon", () => wasmoon);
    parties.set("fengari", () => fengari);
  });
  after(() => closers.forEach((c) => c()));

  const names = ["host", "espruino", "wasmoon", "fengari"];
  for (const mode of ["dh", "psk"]) {
    for (const order of ["R", "I"]) {
      for (const dev of names) {
        for (const gw of names) {
          if (dev === gw && dev !== "host") continue;
          it(`${mode} order ${order}: device on ${dev}, gateway on ${gw}`, function () {
            const d = parties.get(dev)!(mode), g = parties.get(gw)!(mode);
            const { dh, gh } = connect(d, g, mode, order, "");
            // Data both ways.
            for (const m of ["t=21.5", "t=21.6", "t=21.7"]) assert.ok(d.send(dh, hex(m), 10));
            assert.ok(g.send(gh, hex("led=on"), 10));
            pump(d, dh, g, gh, 10);
            assert.deepEqual(text(g.inbox(gh)), ["t=21.5", "t=21.6", "t=21.7"]);
            assert.deepEqual(text(d.inbox(dh)), ["led=on"]);
            // Across the end of the compact sequence space: the device moves to the next key by itself.
            d.setSeq(dh, 1048570);
            const sent = Array.from({ length: 12 }, (_, n) => `r${n}`);
            for (const m of sent) assert.ok(d.send(dh, hex(m), 20));
            pump(d, dh, g, gh, 20);
            assert.deepEqual(text(g.inbox(gh)), sent);
            assert.equal(d.info(dh).split(",")[3], "1", "device sending epoch");
            assert.equal(g.info(gh).split(",")[4], "1", "gateway receiving epoch");
            // Two transports; the first dies mid-session and the session carries on over the second.
            d.transport(dh, "add", 2);
            g.transport(gh, "add", 2);
            d.transport(dh, "delete", 1);
            g.transport(gh, "delete", 1);
            assert.ok(d.send(dh, hex("over lora"), 30));
            assert.ok(g.send(gh, hex("ack"), 30));
            pump(d, dh, g, gh, 30, (tid) => tid === 1);
            assert.deepEqual(text(g.inbox(gh)), ["over lora"]);
            assert.deepEqual(text(d.inbox(dh)), ["ack"]);
            // The gateway's session is restored after a power cycle: it refuses its saved receiving key and
            // asks the device to move on. Its first request is held back, so it asks again on the device's
            // next record; both requests then arrive, and the device moves one key on, not two.
            g.restore(gh, 40);
            const held: string[] = [];
            for (const [m, t] of [["refused", 40], ["refused again", 50_000]] as const) {
              assert.ok(d.send(dh, hex(m), t));
              for (const p of d.out(dh).split(",").filter(Boolean)) g.feed(gh, p.split(":")[1], 2, t);
              held.push(...g.out(gh).split(",").filter(Boolean));
            }
            assert.deepEqual(text(g.inbox(gh)), []);
            assert.equal(held.length, 2, "two KEY_UPDATE requests");
            for (const p of held) d.feed(dh, p.split(":")[1], 2, 50_001);
            assert.equal(d.info(dh).split(",")[3], "2", "device sending epoch: one step for two requests");
            assert.ok(d.send(dh, hex("next key"), 50_002));
            pump(d, dh, g, gh, 50_002);
            assert.deepEqual(text(g.inbox(gh)), ["next key"]);
            assert.equal(g.info(gh).split(",")[4], "2", "gateway receiving epoch");
          });
        }
      }
    }
  }

  // GPComp: a device that compresses (gpcomp=1) and a gateway with heatshrink (host, Espruino) or without (Lua).
  const status = "t=21.50,21.50,21.51,21.51,21.50,21.50,21.50,21.49,21.50,21.50,21.50,21.51";
  for (const [dev, gw] of [["host", "espruino"], ["espruino", "host"], ["host", "wasmoon"], ["host", "fengari"]]) {
    const refuses = gw === "wasmoon" || gw === "fengari";
    it(`GPComp: device on ${dev} compresses a status text, gateway on ${gw} ${refuses ? "refuses and counts it" : "hands it over as sent"}`, function () {
      const d = parties.get(dev)!("psk"), g = parties.get(gw)!("psk");
      const { dh, gh } = connect(d, g, "psk", "R", ";gpcomp=1");
      const rejected = () => Number(g.info(gh).split(",")[7]);
      const before = rejected();
      assert.ok(d.send(dh, hex(status), 10));
      const records = d.out(dh).split(",").filter(Boolean).map((p) => Buffer.from(p.split(":")[1], "hex"));
      assert.equal(records.length, 1);
      assert.equal(records[0][3] & 0x80, 0x80, "bit 7 set");
      assert.ok(records[0].length < status.length, `a ${records[0].length}-byte record for a ${status.length}-byte text`);
      g.feed(gh, records[0].toString("hex"), 1, 10);
      assert.deepEqual(text(g.inbox(gh)), refuses ? [] : [status]);
      assert.equal(rejected() - before, refuses ? 1 : 0);
      // A reading that does not shrink goes as it is, and every gateway takes it.
      assert.ok(d.send(dh, hex("t=21.5"), 20));
      pump(d, dh, g, gh, 20);
      assert.deepEqual(text(g.inbox(gh)), ["t=21.5"]);
    });
  }
});
