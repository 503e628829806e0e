// The simulator's radio signal (host/sim/signal.ts): per board a path-loss mean for its distance plus noise,
// in the ranges real receivers report, replayed exactly from the seed; the radios hand it to the gateway.
import assert from "node:assert/strict";
import { VirtualClock } from "../../../host/sim/clock";
import { BleMedium } from "../../../host/sim/radio-ble";
import { LoraChannel } from "../../../host/sim/radio-lora";
import { prng } from "../../../host/sim/random";
import { BLE_SIGNAL, LORA_SIGNAL, SignalModel } from "../../../host/sim/signal";
import type { RadioSignal } from "../../../host/gateway/radio-signal";

const boards = Array.from({ length: 40 }, (_, i) => `board-${i}`);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe("simulated radio signal", () => {
  it("LoRa: RSSI within -120..-30 dBm and SNR within -20..+10 dB in quarter dB, each board about its own mean", () => {
    const m = new SignalModel(LORA_SIGNAL, prng(7));
    const means: number[] = [];
    for (const b of boards) {
      const s = Array.from({ length: 50 }, () => m.sample(b));
      for (const x of s) {
        assert.ok(Number.isInteger(x.rssi) && x.rssi >= -120 && x.rssi <= -30, `${b}: ${x.rssi}`);
        assert.ok(x.snr !== undefined && x.snr >= -20 && x.snr <= 10 && Number.isInteger(x.snr * 4), `${b}: snr ${x.snr}`);
      }
      const rs = s.map((x) => x.rssi);
      means.push(mean(rs));
      // Noise of a few dB about the board's mean, not a new draw of its distance each time.
      assert.ok(Math.max(...rs) - Math.min(...rs) <= 30, `${b}: spread ${Math.min(...rs)}..${Math.max(...rs)}`);
    }
    // Near and far boards both: the means spread over tens of dB.
    assert.ok(Math.max(...means) - Math.min(...means) >= 25, `board means ${Math.min(...means)}..${Math.max(...means)}`);
    // A weaker signal has the lower SNR (below the noise floor it goes negative).
    const far = boards[means.indexOf(Math.min(...means))], near = boards[means.indexOf(Math.max(...means))];
    assert.ok(mean(Array.from({ length: 20 }, () => m.sample(far).snr!)) < mean(Array.from({ length: 20 }, () => m.sample(near).snr!)));
  });

  it("BLE: RSSI within -95..-40 dBm and no SNR", () => {
    const m = new SignalModel(BLE_SIGNAL, prng(8));
    for (const b of boards) for (let i = 0; i < 20; i++) {
      const x = m.sample(b);
      assert.ok(x.rssi >= -95 && x.rssi <= -40, `${b}: ${x.rssi}`);
      assert.equal(x.snr, undefined);
    }
  });

  it("replays exactly from its seed, and differs for another", () => {
    const run = (seed: number) => { const m = new SignalModel(LORA_SIGNAL, prng(seed)); return boards.map((b) => m.sample(b)); };
    assert.deepEqual(run(3), run(3));
    assert.notDeepEqual(run(3), run(4));
  });

  it("the radios give the gateway each packet's signal", () => {
    const clock = new VirtualClock();
    const lora = new LoraChannel(clock, prng(1), 0, "EU868", new SignalModel(LORA_SIGNAL, prng(2)));
    const heard: RadioSignal[] = [];
    lora.attachGateway((_f, s) => heard.push(s));
    lora.transmit("far-board", new Uint8Array(20), 0);
    clock.runUntil(10_000);
    assert.equal(heard.length, 1);
    assert.ok(heard[0].rssi <= -30 && heard[0].rssi >= -120 && heard[0].snr !== undefined, JSON.stringify(heard));

    const ble = new BleMedium(clock, prng(3), 0, 30, 60, new SignalModel(BLE_SIGNAL, prng(4)));
    const got: RadioSignal[] = [];
    ble.attachGateway((_from, _c, s) => got.push(s), () => {});
    ble.attachBoard("puck", 23, () => {}, () => {});
    clock.runUntil(20_000);
    assert.ok(ble.notify("puck", new Uint8Array(10)));
    clock.runUntil(21_000);
    assert.equal(got.length, 1);
    assert.ok(got[0].rssi <= -40 && got[0].rssi >= -95 && got[0].snr === undefined, JSON.stringify(got));
  });
});
