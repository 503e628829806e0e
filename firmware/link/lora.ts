// LoRa link rules the device enforces before it keys the radio: time on air, the regional data-rate
// limits, and the duty-cycle budget. Pure integer functions, so they give the same answers on Node,
// Espruino and 32-bit Lua (docs/PORTABLE.md): every intermediate stays below 2^31, division is `fdiv`.
import { fdiv } from "#target";

/** 2^n by repeated doubling (`**`, Math.pow and `<<` on non-words are not portable). */
function pow2(n: number): number {
  let p = 1;
  for (let i = 0; i < n; i++) p = p + p;
  return p;
}

/**
 * Symbol time in microseconds, 2^SF / BW. Computed as 2^SF * 1000 / (BW in kHz) because 2^12 * 10^6 does
 * not fit a 32-bit integer; exact for 125, 250 and 500 kHz (the only LoRaWAN bandwidths).
 */
export function loraSymbolUs(sf: number, bwHz: number): number {
  return fdiv(pow2(sf) * 1000, fdiv(bwHz, 1000));
}

/** The radio must use low-data-rate optimisation when a symbol lasts 16 ms or more (SX127x datasheet). */
export function loraLowDataRate(sf: number, bwHz: number): boolean {
  return loraSymbolUs(sf, bwHz) >= 16000;
}

/**
 * Time on air in microseconds, Semtech AN1200.13 (SX127x):
 *   payloadSymbNb = 8 + max(ceil((8PL - 4SF + 28 + 16CRC - 20IH) / (4(SF - 2DE))) * (CR + 4), 0)
 *   T = (preamble + 4.25 + payloadSymbNb) * Tsym
 * `cr` is 1..4 for 4/5..4/8. The 0.25 symbol is Tsym/4, exact because Tsym is a multiple of 4 us at
 * 125/250/500 kHz. Fits 32 bits for any payload up to 255 B and preambles up to ~60000 symbols at SF12.
 */
export function loraAirtimeUs(
  payloadBytes: number,
  sf: number,
  bwHz: number,
  cr: number,
  preambleSymbols: number,
  explicitHeader: boolean,
  crc: boolean,
  lowDataRateOptimize: boolean,
): number {
  const tsym = loraSymbolUs(sf, bwHz);
  const ih = explicitHeader ? 0 : 1;
  const de = lowDataRateOptimize ? 1 : 0;
  const num = 8 * payloadBytes - 4 * sf + 28 + (crc ? 16 : 0) - 20 * ih;
  const den = 4 * (sf - 2 * de);
  // max(..., 0): only a positive numerator adds symbols, which is also where the ceil trick is valid.
  let symbols = 8;
  if (num > 0) symbols = symbols + fdiv(num + den - 1, den) * (cr + 4);
  return (preambleSymbols + 4) * tsym + fdiv(tsym, 4) + symbols * tsym;
}

/** Microseconds to whole milliseconds, rounded up so the duty-cycle gate never undercounts. */
export function airtimeMsCeil(us: number): number {
  return fdiv(us + 999, 1000);
}

/** One regional data rate: spreading factor, bandwidth, and the largest frame the link may carry. */
export type DataRate = { sf: number; bwHz: number; maxPayload: number };

function rate(sf: number, bwHz: number, maxPayload: number): DataRate {
  return { sf: sf, bwHz: bwHz, maxPayload: maxPayload };
}

/** EU868 DR0..DR6 (LoRaWAN RP002 table, application payload N); undefined for any other rate. */
export function euDataRate(dr: number): DataRate | undefined {
  // A chain of tests rather than a literal table: each array element would cost a JsVar on Espruino.
  if (dr === 0) return rate(12, 125000, 51);
  if (dr === 1) return rate(11, 125000, 51);
  if (dr === 2) return rate(10, 125000, 51);
  if (dr === 3) return rate(9, 125000, 115);
  if (dr === 4) return rate(8, 125000, 222);
  if (dr === 5) return rate(7, 125000, 222);
  if (dr === 6) return rate(7, 250000, 222);
  return undefined;
}

/** US915 uplink DR0..DR4 (LoRaWAN RP002 table, application payload N); undefined for any other rate. */
export function usDataRate(dr: number): DataRate | undefined {
  if (dr === 0) return rate(10, 125000, 11);
  if (dr === 1) return rate(9, 125000, 53);
  if (dr === 2) return rate(8, 125000, 125);
  if (dr === 3) return rate(7, 125000, 242);
  if (dr === 4) return rate(8, 500000, 242);
  return undefined;
}

export type Region = "EU868" | "US915";

/** The data rate of a region, or undefined when the region does not define it. */
export function regionDataRate(dr: number, region: Region): DataRate | undefined {
  return region === "EU868" ? euDataRate(dr) : usDataRate(dr);
}

/** May a frame of this size go out at this data rate? No for unknown rates and oversized frames. */
export function loraFrameAllowed(payloadBytes: number, dr: number, region: Region): boolean {
  const r = regionDataRate(dr, region);
  if (r === undefined) return false;
  return payloadBytes >= 0 && payloadBytes <= r.maxPayload;
}

/**
 * Time on air of a frame at a regional data rate with the LoRaWAN PHY settings (CR 4/5, 8-symbol preamble,
 * explicit header, CRC on, LDRO when symbols last >= 16 ms); -1 for an unknown rate.
 */
export function loraFrameAirtimeUs(payloadBytes: number, dr: number, region: Region): number {
  const r = regionDataRate(dr, region);
  if (r === undefined) return -1;
  return loraAirtimeUs(payloadBytes, r.sf, r.bwHz, 1, 8, true, true, loraLowDataRate(r.sf, r.bwHz));
}

/**
 * Duty-cycle gate over a sliding one-hour window: the air time of transmissions that started within the
 * last hour, plus the next one, must not exceed `budgetMs`. Entries are kept oldest first in two parallel
 * arrays (no per-entry objects). Times are ms below 2^31 (~24.8 days): the caller rebases its clock before
 * then, as 32-bit Lua has nothing wider.
 *
 * The caller's clock may count in steps (NodeMCU's counts 100 ms alarm ticks), and a frame sent between two
 * steps carries the earlier one, so two recorded starts can be up to one step closer together than the
 * frames really were. An entry therefore counts for an hour plus `clockStepMs` (`keepMs`):
 * frames whose true starts lie within any one-hour window never exceed the budget, whatever their phase.
 */
export type DutyCycle = {
  keepMs: number;
  permille: number;
  budgetMs: number;
  starts: number[];
  airtimes: number[];
};

/**
 * A gate with a one-hour window at `permille` (10 = 1 %, i.e. 36 000 ms per hour), for a clock that can
 * read up to `clockStepMs` behind the true time (0 for an exact clock).
 */
export function dutyNew(permille: number, clockStepMs: number): DutyCycle {
  const windowMs = 3600000;
  // windowMs * permille can pass 2^31, so split windowMs into thousands and remainder.
  const budgetMs = fdiv(windowMs, 1000) * permille + fdiv((windowMs % 1000) * permille, 1000);
  return { keepMs: windowMs + clockStepMs, permille: permille, budgetMs: budgetMs, starts: [], airtimes: [] };
}

/** Air time (ms) of recorded transmissions that still count at nowMs. */
function dutyUsed(d: DutyCycle, nowMs: number): number {
  let used = 0;
  for (let i = 0; i < d.starts.length; i++) {
    if (nowMs - d.starts[i] < d.keepMs) used = used + d.airtimes[i];
  }
  return used;
}

/** Would a transmission of airtimeMs starting at nowMs stay within the budget? */
export function dutyAllows(d: DutyCycle, nowMs: number, airtimeMs: number): boolean {
  return dutyUsed(d, nowMs) + airtimeMs <= d.budgetMs;
}

/** Record a transmission; entries that can no longer count (older than the window) are dropped. */
export function dutyRecord(d: DutyCycle, nowMs: number, airtimeMs: number): void {
  while (d.starts.length > 0 && nowMs - d.starts[0] >= d.keepMs) {
    d.starts.shift();
    d.airtimes.shift();
  }
  d.starts.push(nowMs);
  d.airtimes.push(airtimeMs);
}

/**
 * The earliest time >= nowMs at which dutyAllows would say yes, or -1 if never (airtime over the budget).
 * Entries leave the window oldest first, each at start + keepMs, so walk them until enough has left.
 */
export function dutyNextAllowedMs(d: DutyCycle, nowMs: number, airtimeMs: number): number {
  if (airtimeMs > d.budgetMs) return -1;
  let excess = dutyUsed(d, nowMs) + airtimeMs - d.budgetMs;
  if (excess <= 0) return nowMs;
  for (let i = 0; i < d.starts.length; i++) {
    if (nowMs - d.starts[i] < d.keepMs) {
      excess = excess - d.airtimes[i];
      if (excess <= 0) return d.starts[i] + d.keepMs;
    }
  }
  return -1; // unreachable: once every entry has left, only airtimeMs <= budgetMs remains
}
