// LoRa P2P as a RAK3172 (RUI3 firmware) speaks it over its UART: the radio settings, the largest frame each
// spreading factor may carry, the air time of a frame, and what one line from the modem means. Pure
// functions, shared by the gateway's modem link (lora-modem.ts) and the fake modem the tests run.
//
// The RUI3 commands used (each answered by a status line: OK, AT_ERROR, AT_PARAM_ERROR, AT_BUSY_ERROR, ...):
//   AT+NWM=0                                      LoRa P2P mode (not LoRaWAN)
//   AT+P2P=<freq Hz>:<sf>:<bw kHz>:<cr>:<preamble>:<power dBm>   all P2P settings at once; cr 0..3 = 4/5..4/8
//   AT+PRECV=65534                                listen continuously; AT+PRECV=0 stops listening
//   AT+PSEND=<hex>                                transmit one frame (refused with AT_BUSY_ERROR while listening)
// and two unsolicited events: "+EVT:RXP2P:<rssi>:<snr>:<hex>" per frame heard, "+EVT:TXP2P DONE" when a
// transmission has left the antenna.
import { airtimeMsCeil, euDataRate, loraAirtimeUs, loraLowDataRate } from "../../../firmware/link/lora";

export type P2pSettings = { freqHz: number; sf: number; bwKHz: number; cr: number; preamble: number; powerDbm: number };

/** EU868 RX2-style defaults: 869.525 MHz (10 % duty cycle band), SF9/125 kHz, 4/5, 8-symbol preamble, 14 dBm. */
export const P2P_DEFAULTS: P2pSettings = { freqHz: 869_525_000, sf: 9, bwKHz: 125, cr: 0, preamble: 8, powerDbm: 14 };

/** Listen without a timeout and without leaving receive after a frame (65535 would stop after one). */
export const PRECV_CONTINUOUS = 65534;

export function p2pCommand(s: P2pSettings): string {
  return `AT+P2P=${s.freqHz}:${s.sf}:${s.bwKHz}:${s.cr}:${s.preamble}:${s.powerDbm}`;
}

/**
 * The largest frame at a spreading factor: the EU868 application payload of the data rate with that SF
 * (51 B at SF12..10, 115 B at SF9, 222 B at SF8..7). The limit is a dwell-time rule, so a wider bandwidth
 * (shorter frames) keeps the 125 kHz figure: conservative, never over. 0 for a SF the region lacks.
 */
export function p2pMaxPayload(sf: number): number {
  for (let dr = 0; dr <= 6; dr++) {
    const r = euDataRate(dr);
    if (r !== undefined && r.sf === sf) return r.maxPayload;
  }
  return 0;
}

/** A frame's time on air (ms, rounded up) with these settings: the Semtech formula of firmware/link/lora.ts. */
export function p2pAirtimeMs(s: P2pSettings, bytes: number): number {
  const bwHz = s.bwKHz * 1000;
  return airtimeMsCeil(loraAirtimeUs(bytes, s.sf, bwHz, s.cr + 1, s.preamble, true, true, loraLowDataRate(s.sf, bwHz)));
}

export type ModemLine =
  | { kind: "ok" }
  | { kind: "error"; code: string }
  | { kind: "rx"; rssi: number; snr: number; frame: Uint8Array }
  | { kind: "txDone" }
  | { kind: "rxError" }
  | { kind: "ignore" }
  | { kind: "bad" };

const RX_PREFIX = "+EVT:RXP2P:";

/** What a line from the modem (without its line ending) means; never throws. */
export function parseModemLine(line: string): ModemLine {
  if (line === "OK") return { kind: "ok" };
  if (/^AT_[A-Z_]+$/.test(line)) return { kind: "error", code: line };
  if (line === "+EVT:TXP2P DONE") return { kind: "txDone" };
  if (line.startsWith(RX_PREFIX)) return parseRx(line.slice(RX_PREFIX.length));
  // A failed CRC or a timed-out window: nothing to deliver, but not noise either.
  if (line === "+EVT:RXP2P RECEIVE ERROR" || line === "+EVT:RXP2P RECEIVE TIMEOUT") return { kind: "rxError" };
  // Blank lines frame every status; echoed commands (ATE on) and the mode banner after AT+NWM carry nothing.
  if (line === "" || /^AT(\+|$)/.test(line) || line.startsWith("Current Work Mode:")) return { kind: "ignore" };
  return { kind: "bad" };
}

function parseRx(rest: string): ModemLine {
  const m = /^(-?\d{1,4}):(-?\d{1,3}):((?:[0-9A-Fa-f]{2}){1,255})$/.exec(rest);
  if (!m) return { kind: "bad" };
  return { kind: "rx", rssi: Number(m[1]), snr: Number(m[2]), frame: Uint8Array.from(Buffer.from(m[3], "hex")) };
}

/** Splits a byte stream into lines, bounding each (a stuck or noisy line must not grow without limit). */
export function lineSplitter(onLine: (line: string) => void, onOverlong: () => void, maxLine = 1024): (chunk: Buffer) => void {
  let buf = "";
  let skipping = false;
  return (chunk) => {
    // latin1: every byte maps to one character, so line noise is counted as a bad line rather than thrown.
    buf += chunk.toString("latin1");
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (skipping) skipping = false;
      else onLine(line);
    }
    if (buf.length > maxLine) {
      buf = "";
      if (!skipping) onOverlong();
      skipping = true;
    }
  };
}
