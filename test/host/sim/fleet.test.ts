// The board simulator end to end: built bundles (Espruino sandbox, Lua under wasmoon) against the real
// gateway, over BLE and LoRa modelled in virtual time.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as vm from "node:vm";
import type { BoardProfile } from "../../../firmware/board";
import { EspruinoBoard } from "../../../host/sim/board-espruino";
import { VirtualClock } from "../../../host/sim/clock";
import { EspruinoRefusal } from "../../../host/sim/espruino-sandbox";
import { BoardResult, runFleet } from "../../../host/sim/fleet";
import { prng } from "../../../host/sim/random";
import { LoraChannel } from "../../../host/sim/radio-lora";
import * as path from "node:path";
import { DIST, ensureBuilt, readArtefact } from "../../harness/build-once";
import { readBoardFiles } from "../../../scripts/lib/espruino-modules";
import { recordNonce } from "../../harness/wiretap";

const profile = (name: string) => JSON.parse(readFileSync(`boards/${name}.json`, "utf8")) as BoardProfile;

/** Each reading is delivered once, or reported lost, or still in flight at the end: nothing vanishes. */
function accounted(r: BoardResult): void {
  assert.equal(r.appDuplicates, 0, `${r.name}: the application saw a reading twice`);
  assert.equal(r.delivered + (r.lost - r.lostButDelivered) + r.inFlight, r.queued,
    `${r.name}: ${r.queued} readings, ${r.delivered} delivered, ${r.lost} reported lost (${r.lostButDelivered} of them delivered), ${r.inFlight} in flight`);
}

/** Sum of air time started within any one-hour window, per board. */
function maxHourlyAirtime(log: { from: string; start: number; end: number }[], board: string): number {
  const mine = log.filter((t) => t.from === board).sort((a, b) => a.start - b.start);
  let best = 0;
  for (let i = 0; i < mine.length; i++) {
    let sum = 0;
    for (let j = i; j < mine.length && mine[j].start - mine[i].start < 3_600_000; j++) sum += mine[j].end - mine[j].start;
    best = Math.max(best, sum);
  }
  return best;
}

describe("board simulator: built bundles, virtual radios, the real gateway", function () {
  this.timeout(900_000);
  before(async function () {
    const { error } = await ensureBuilt();
    assert.equal(error, undefined, error);
  });

  it("50 boards of every type over BLE and LoRa with 10 % loss: all handshake, every reading arrives once or is reported lost, memory stays in budget", async () => {
    const { results, fleet } = await runFleet({ boards: 50, link: "mixed", loss: 0.1, minutes: 15, seed: 7 });
    assert.equal(new Set(results.map((r) => r.profile)).size, 5);
    for (const r of results) {
      assert.equal(r.failed, undefined, `${r.name}: ${r.failed}`);
      assert.equal(r.errors, 0, r.name);
      assert.ok(r.handshakes >= 1, `${r.name} never completed a handshake`);
      accounted(r);
      assert.ok(r.memPeak <= r.memBudget, `${r.name}: ${r.memPeak} ${r.memUnit} of ${r.memBudget}`);
      assert.ok(r.maxFrame <= (profile(r.profile).radios.lora?.maxPayload ?? 0), `${r.name} sent a ${r.maxFrame}-byte LoRa frame`);
      assert.ok(maxHourlyAirtime(fleet.lora!.log, r.name) <= 36_000, `${r.name} went over the 1 % duty cycle`);
    }
    const delivered = results.reduce((a, r) => a + r.delivered, 0);
    assert.ok(delivered > 1000, `only ${delivered} readings delivered`);
    // 10 % loss really happened on both radios.
    assert.ok(fleet.ble!.stats.retransmissions > 0);
    assert.ok(fleet.lora!.log.some((t) => t.lost));
  });

  it("Espruino boards send their status text with GPComp and the application gets it as sent; 8-byte readings go as they are", async () => {
    const flagged: number[] = [];
    const { results, fleet } = await runFleet({
      boards: 4, link: "ble", loss: 0, minutes: 5, seed: 3, profiles: ["puckjs", "banglejs2"], statusEvery: 60,
      tap: (_link, p) => {
        if (p.length >= 17 && p[0] + p[1] + p[2] !== 0) flagged.push(p[3] & 0x80 ? p.length : 0);
      },
    });
    const statuses = fleet.uplinks.filter((u) => u.body.length !== 4);
    assert.ok(statuses.length >= 4 * 4, `${statuses.length} status messages delivered`);
    for (const u of statuses) assert.match(Buffer.from(u.body).toString(), /^t=(\d\d\.\d\d,){11}\d\d\.\d\d$/);
    assert.ok(fleet.uplinks.some((u) => u.body.length === 4), "readings delivered too");
    // Every status record carried bit 7 and is far smaller than its 77-byte message; no reading did.
    // (The boards' counts include the status sent at the last instant, still on the air when the run ends.)
    const compressedRecords = flagged.filter((n) => n > 0);
    assert.ok(compressedRecords.length >= statuses.length && compressedRecords.length <= results.reduce((a, r) => a + r.compressed, 0));
    for (const n of compressedRecords) assert.ok(n < 77 + 16 - 30, `a ${n}-byte compressed record`);
    for (const r of results) assert.ok(r.savedBytes > 40 * r.compressed, `${r.name}: ${r.savedBytes} bytes saved on ${r.compressed} records`);
  });

  it("a board moves BLE -> LoRa -> BLE mid-session without a new handshake", async () => {
    const links: string[] = [];
    const { results, fleet } = await runFleet({
      boards: 1, link: "mixed", loss: 0, minutes: 16, seed: 3, profiles: ["esp32-espruino"], periodBle: 60,
      script: (f) => {
        f.clock.at(4 * 60_000, () => f.ble!.setInRange(f.boards[0].name, false));
        f.clock.at(11 * 60_000, () => f.ble!.setInRange(f.boards[0].name, true));
      },
    });
    for (const u of fleet.uplinks) links.push(`${Math.floor(u.at / 60_000)}:${u.link.startsWith("ble") ? "ble" : "lora"}`);
    const r = results[0];
    assert.equal(r.handshakes, 1, "the move needed a new handshake");
    accounted(r);
    assert.equal(r.lost, 0);
    const during = (from: number, to: number) => fleet.uplinks.filter((u) => u.at >= from * 60_000 && u.at < to * 60_000).map((u) => (u.link.startsWith("ble") ? "ble" : "lora"));
    assert.ok(during(1, 4).length > 0 && during(1, 4).every((l) => l === "ble"), links.join(" "));
    assert.ok(during(5, 11).length > 0 && during(5, 11).every((l) => l === "lora"), links.join(" "));
    assert.ok(during(12, 16).length > 0 && during(12, 16).every((l) => l === "ble"), links.join(" "));
  });

  it("power-cycling boards mid-session never repeats a sequence number under a key", async () => {
    const seen = new Map<string, number>();
    let repeats = 0, records = 0;
    const { results, fleet } = await runFleet({
      boards: 10, link: "mixed", loss: 0.05, minutes: 20, seed: 11, periodBle: 20, periodLora: 120,
      tap: (_link, p) => {
        // No rekey happens in 20 minutes (it is hourly), so (SPI, seq) is one (key, nonce).
        const key = recordNonce(p);
        if (key === undefined) return;
        records++;
        if (seen.has(key)) repeats++;
        seen.set(key, 1);
      },
      script: (f) => {
        const rand = prng(99);
        for (const b of f.boards) {
          for (let k = 1; k <= 4; k++) {
            const at = k * 3 * 60_000 + Math.floor(rand() * 60_000);
            f.clock.at(at, () => b.powerOff());
            f.clock.at(at + 2000, () => b.boot());
          }
        }
      },
    });
    assert.ok(records > 200, `only ${records} records seen`);
    assert.equal(repeats, 0, `${repeats} records reused a (key, sequence number)`);
    for (const r of results) {
      assert.equal(r.failed, undefined, `${r.name}: ${r.failed}`);
      assert.equal(r.appDuplicates, 0, r.name);
      // Readings made since the last power cycle arrive: the board resumed its saved session ("handshakes"
      // counts this boot's handshakes: 0 means it carried on without one).
      assert.ok(fleet.uplinks.some((u) => fleet.deviceOf.get(u.device)?.name === r.name && u.at > 13 * 60_000), `${r.name} went quiet`);
    }
    assert.ok(results.filter((r) => r.handshakes === 0).length >= 5, "sessions should survive power cycles without a new handshake");
  });

  it("LoRa boards that want far more air time than 1 % get 1 % and no more, and never send an oversized frame", async () => {
    const { results, fleet } = await runFleet({ boards: 4, link: "lora", loss: 0, minutes: 70, seed: 5, periodLora: 20, profiles: ["esp32-nodemcu-lora", "esp32-espruino"] });
    for (const r of results) {
      const hourly = maxHourlyAirtime(fleet.lora!.log, r.name);
      assert.ok(hourly <= 36_000, `${r.name}: ${hourly} ms in one hour`);
      assert.ok(hourly > 30_000, `${r.name}: the load should have pressed the duty cycle (${hourly} ms)`);
      assert.ok(r.maxFrame <= 51);
      accounted(r);
    }
  });

  // Boards powered up together (a site's power coming back) with the same provisioned timeouts: before the
  // sensor's random first phase and the boards' own spread of LoRa timeouts, every reading and every retry
  // 30 s later went out in the same seconds on 3 channels, and 7-18 of 30 readings per board type arrived.
  it("twelve LoRa-only boards switched on within seconds of each other do not report in lockstep: nearly every reading arrives", async () => {
    const { results, fleet } = await runFleet({ boards: 12, link: "lora", loss: 0.05, minutes: 30, seed: 1 });
    const queued = results.reduce((n, r) => n + r.queued, 0), delivered = results.reduce((n, r) => n + r.delivered, 0);
    assert.ok(queued >= 60, `${queued} readings`);
    assert.ok(delivered >= 0.9 * queued, `${delivered} of ${queued} readings delivered`);
    const up = fleet.lora!.log.filter((t) => t.from !== "gateway");
    assert.ok(up.filter((t) => t.lost).length <= 0.4 * up.length, "most uplink frames should get through");
    for (const r of results) {
      assert.equal(r.failed, undefined, `${r.name}: ${r.failed}`);
      accounted(r);
    }
  });

  it("NodeMCU boards on fengari (32-bit Lua integers, X25519 through sodium) work the same", async () => {
    const { results } = await runFleet({ boards: 2, link: "lora", loss: 0.1, minutes: 12, seed: 21, periodLora: 90, profiles: ["esp32-nodemcu-lora"], luaEngine: "fengari" });
    for (const r of results) {
      assert.equal(r.failed, undefined, `${r.name}: ${r.failed}`);
      assert.equal(r.errors, 0, r.name);
      assert.ok(r.handshakes >= 1 && r.delivered >= 1, `${r.name}: ${r.handshakes} handshakes, ${r.delivered} delivered`);
      accounted(r);
    }
  });

  it("a payload too large for the LoRa data rate is refused on the board, never keyed", () => {
    const clock = new VirtualClock();
    const lora = new LoraChannel(clock, prng(1), 0, "EU868");
    const p = profile("esp32-espruino");
    const board = new EspruinoBoard("big", p, readBoardFiles(path.join(DIST, "espruino"), "esp32-espruino"), "mode=dh;order=I;kid=01020304;secret=" + "11".repeat(32) + ";gateway=" + "09" + "00".repeat(31), { clock, ble: undefined, lora, rand: prng(2) });
    board.boot();
    clock.runUntil(1000);
    const ctx = (board as unknown as { sandbox: { context: vm.Context } }).sandbox.context;
    vm.runInContext("sesame.send(new Uint8Array(60))", ctx);
    clock.runUntil(120_000);
    assert.ok(lora.log.length > 0, "the board should have keyed its handshake");
    assert.ok(lora.log.every((t) => t.bytes <= 51), `frames: ${lora.log.map((t) => t.bytes).join(",")}`);
  });

  it("refuses to boot a bundle that uses a construct Espruino lacks", () => {
    const clock = new VirtualClock();
    const files = readBoardFiles(path.join(DIST, "espruino"), "puckjs");
    files["sesame.js"] += "\nvar { a, b } = { a: 1, b: 2 };\n";
    const board = new EspruinoBoard("bad", profile("puckjs"), files, "mode=psk;order=I;id=01;psk=" + "22".repeat(32), { clock, ble: undefined, lora: undefined, rand: prng(3) });
    assert.throws(() => board.boot(), EspruinoRefusal);
  });
});
