import assert from "node:assert/strict";
import {
  airtimeMsCeil,
  dutyAllows,
  dutyNew,
  dutyNextAllowedMs,
  dutyRecord,
  euDataRate,
  loraAirtimeUs,
  loraFrameAirtimeUs,
  loraFrameAllowed,
  loraLowDataRate,
  usDataRate,
} from "../../../firmware/link/lora";

// Independent floating-point reference: AN1200.13 transcribed literally, in seconds.
function airtimeFloatUs(
  pl: number, sf: number, bw: number, cr: number, npre: number, explicit: boolean, crc: boolean, de: boolean,
): number {
  const tsym = Math.pow(2, sf) / bw;
  const tpre = (npre + 4.25) * tsym;
  const ih = explicit ? 0 : 1;
  const n = (8 * pl - 4 * sf + 28 + 16 * (crc ? 1 : 0) - 20 * ih) / (4 * (sf - 2 * (de ? 1 : 0)));
  const payloadSymbNb = 8 + Math.max(Math.ceil(n) * (cr + 4), 0);
  return (tpre + payloadSymbNb * tsym) * 1e6;
}

describe("link/lora: time on air", () => {
  it("matches known figures", () => {
    // SF7/125k CR4/5, preamble 8, explicit header, CRC, 20 B: 43 payload symbols + 12.25 = 56.576 ms.
    assert.equal(loraAirtimeUs(20, 7, 125000, 1, 8, true, true, false), 56576);
    // SF12/125k CR4/5 (LDRO), 51 B: 63 + 12.25 symbols of 32.768 ms.
    assert.equal(loraAirtimeUs(51, 12, 125000, 1, 8, true, true, true), 2465792);
    // The mission's figure: a 64-byte frame at SF12/125 kHz is on air for ~2.8 s.
    const t64 = loraAirtimeUs(64, 12, 125000, 1, 8, true, true, true);
    assert.equal(t64, 2793472);
    assert.equal(loraFrameAirtimeUs(64, 0, "EU868"), t64);
    assert.equal(airtimeMsCeil(t64), 2794);
    assert.equal(airtimeMsCeil(56000), 56);
  });

  it("equals the floating-point formula over SF7..12, 125/250/500 kHz, CR 1..4, 0..255 B", () => {
    let n = 0;
    for (let sf = 7; sf <= 12; sf++) {
      for (const bw of [125000, 250000, 500000]) {
        for (let cr = 1; cr <= 4; cr++) {
          for (let pl = 0; pl <= 255; pl++) {
            for (let mode = 0; mode < 8; mode++) {
              const explicit = (mode & 1) !== 0, crc = (mode & 2) !== 0, de = (mode & 4) !== 0;
              const want = Math.round(airtimeFloatUs(pl, sf, bw, cr, 8, explicit, crc, de));
              const got = loraAirtimeUs(pl, sf, bw, cr, 8, explicit, crc, de);
              assert.ok(Number.isInteger(got) && Math.abs(got - want) <= 1, `${pl} B SF${sf} ${bw} CR${cr} m${mode}: ${got} vs ${want}`);
              n++;
            }
          }
        }
      }
    }
    assert.equal(n, 6 * 3 * 4 * 256 * 8);
  });

  it("switches on low-data-rate optimisation from 16 ms symbols", () => {
    assert.equal(loraLowDataRate(10, 125000), false);
    assert.equal(loraLowDataRate(11, 125000), true);
    assert.equal(loraLowDataRate(12, 125000), true);
    assert.equal(loraLowDataRate(12, 500000), false);
  });
});

describe("link/lora: data rates", () => {
  it("has the EU868 and US915 tables", () => {
    assert.deepEqual(euDataRate(0), { sf: 12, bwHz: 125000, maxPayload: 51 });
    assert.deepEqual(euDataRate(3), { sf: 9, bwHz: 125000, maxPayload: 115 });
    assert.deepEqual(euDataRate(6), { sf: 7, bwHz: 250000, maxPayload: 222 });
    assert.deepEqual(usDataRate(0), { sf: 10, bwHz: 125000, maxPayload: 11 });
    assert.deepEqual(usDataRate(4), { sf: 8, bwHz: 500000, maxPayload: 242 });
    const eu = [51, 51, 51, 115, 222, 222, 222], us = [11, 53, 125, 242, 242];
    for (let dr = 0; dr < 7; dr++) assert.equal(euDataRate(dr)!.maxPayload, eu[dr]);
    for (let dr = 0; dr < 5; dr++) assert.equal(usDataRate(dr)!.maxPayload, us[dr]);
    assert.equal(euDataRate(7), undefined);
    assert.equal(euDataRate(-1), undefined);
    assert.equal(usDataRate(5), undefined);
    assert.equal(loraFrameAirtimeUs(10, 9, "US915"), -1);
  });

  it("refuses frames larger than the data rate allows", () => {
    assert.equal(loraFrameAllowed(51, 0, "EU868"), true);
    assert.equal(loraFrameAllowed(52, 0, "EU868"), false);
    assert.equal(loraFrameAllowed(64, 0, "EU868"), false);
    assert.equal(loraFrameAllowed(222, 5, "EU868"), true);
    assert.equal(loraFrameAllowed(223, 6, "EU868"), false);
    assert.equal(loraFrameAllowed(11, 0, "US915"), true);
    assert.equal(loraFrameAllowed(12, 0, "US915"), false);
    assert.equal(loraFrameAllowed(242, 4, "US915"), true);
    assert.equal(loraFrameAllowed(1, 7, "EU868"), false);
    assert.equal(loraFrameAllowed(1, 5, "US915"), false);
  });
});

describe("link/lora: duty cycle", () => {
  it("budgets 36 s per hour at 1 %", () => {
    assert.equal(dutyNew(10, 0).budgetMs, 36000);
    assert.equal(dutyNew(1, 0).budgetMs, 3600);
    assert.equal(dutyNew(1000, 0).budgetMs, 3600000);
    const d = dutyNew(10, 0);
    assert.equal(dutyAllows(d, 0, 36000), true);
    assert.equal(dutyAllows(d, 0, 36001), false);
    assert.equal(dutyNextAllowedMs(d, 0, 36001), -1);
  });

  it("sends 2.8 s frames as fast as allowed for 3 hours without exceeding 36 s in any hour", () => {
    const d = dutyNew(10, 0);
    const air = airtimeMsCeil(loraAirtimeUs(64, 12, 125000, 1, 8, true, true, true)); // 2794 ms
    const hour = 3600000, end = 3 * hour;
    const starts: number[] = [];
    let t = 0;
    while (t < end) {
      if (dutyAllows(d, t, air)) {
        dutyRecord(d, t, air);
        starts.push(t);
        t += air; // the radio is busy until the frame is out
      } else {
        const next = dutyNextAllowedMs(d, t, air);
        assert.ok(next > t);
        // Exact: closed one millisecond before, open at `next`.
        assert.equal(dutyAllows(d, next - 1, air), false);
        assert.equal(dutyAllows(d, next, air), true);
        t = next;
      }
    }
    // The sliding sum is largest over windows that open at a start: check every one.
    for (const s of starts) {
      const inHour = starts.filter((x) => x >= s && x - s < hour).length;
      assert.ok(inHour * air <= 36000, `window at ${s}: ${inHour * air} ms`);
    }
    // 36000 / 2794 = 12 frames per hour, and the gate gives all of them.
    assert.equal(starts.filter((x) => x < hour).length, 12);
    assert.equal(starts.length, 36);
    // Entries older than the window are dropped, so memory stays bounded.
    assert.ok(d.starts.length <= 13);
  });

  it("reopens as soon as the oldest transmissions leave the window", () => {
    const d = dutyNew(10, 0);
    dutyRecord(d, 1000, 20000);
    dutyRecord(d, 50000, 10000);
    assert.equal(dutyAllows(d, 60000, 6000), true);
    assert.equal(dutyAllows(d, 60000, 6001), false);
    assert.equal(dutyNextAllowedMs(d, 60000, 6001), 1000 + 3600000);
    assert.equal(dutyNextAllowedMs(d, 60000, 30000), 50000 + 3600000);
    assert.equal(dutyNextAllowedMs(d, 60000, 5000), 60000);
  });

  // NodeMCU's clock counts 100 ms alarm ticks, and a frame queued by a received packet goes out between two
  // ticks carrying the earlier one: recorded starts can be a step closer together than the true ones.
  it("stays within the budget in true time when the clock reads up to one step late", () => {
    const step = 100, hour = 3600000;
    const read = (t: number) => t - (t % step);
    // The frame at true 99 reads 0; the one at true 3 600 050 reads 3 600 000, a full hour later, although
    // truly 49 ms less than an hour has passed. An exact-clock gate lets the third frame through.
    const exact = dutyNew(10, 0), stepped = dutyNew(10, step);
    for (const d of [exact, stepped]) {
      dutyRecord(d, read(99), 20000);
      dutyRecord(d, read(50000), 16000);
    }
    assert.equal(dutyAllows(exact, read(3600050), 20000), true);
    assert.equal(dutyAllows(stepped, read(3600050), 20000), false);
    assert.equal(dutyNextAllowedMs(stepped, read(3600050), 20000), 0 + hour + step);

    // Frames at random true times, sent whenever the stepped gate allows: no true hour carries more than 36 s.
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const d = dutyNew(10, step);
    const sent: { at: number; air: number }[] = [];
    for (let t = 0; t < 4 * hour; t += 200 + Math.floor(rand() * 3000)) {
      const air = 1000 + Math.floor(rand() * 2000);
      if (dutyAllows(d, read(t), air)) {
        dutyRecord(d, read(t), air);
        sent.push({ at: t, air: air });
      }
    }
    for (const a of sent) {
      const inHour = sent.filter((b) => b.at >= a.at && b.at - a.at < hour).reduce((n, b) => n + b.air, 0);
      assert.ok(inHour <= 36000, `true hour from ${a.at}: ${inHour} ms`);
    }
    assert.ok(sent.filter((b) => b.at < hour).reduce((n, b) => n + b.air, 0) > 33000, "the gate should still give most of the budget");
  });
});
