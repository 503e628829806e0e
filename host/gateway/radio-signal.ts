// What a receiving radio says of each packet besides its bytes: the received signal strength (RSSI, dBm)
// and, on LoRa, the signal-to-noise ratio (SNR, dB; an SX127x reports it in quarter dB, negative below the
// noise floor, down to about -20 dB at SF12). BLE radios report RSSI only.
//
// On the wire (the simulator link's PACKET_SIGNAL, the backbone's GATEWAY_STATUS) a signal is two bytes:
//   rssi (1, two's complement, whole dBm)  |  snr (1, two's complement, quarter dB; 0x80 = not known)
export type RadioSignal = { rssi: number; snr?: number };

export const SIGNAL_SIZE = 2;
const SNR_NONE = -128;

const int8 = (v: number) => Math.max(-127, Math.min(127, Math.round(v)));
const signed = (b: number) => (b >= 0x80 ? b - 0x100 : b);

/** Writes `s` at out[off]; RSSI is rounded to whole dBm, SNR to a quarter dB (both kept within a byte). */
export function writeSignal(out: Uint8Array, off: number, s: RadioSignal): number {
  out[off] = int8(s.rssi) & 0xff;
  out[off + 1] = (s.snr === undefined ? SNR_NONE : int8(s.snr * 4)) & 0xff;
  return off + SIGNAL_SIZE;
}

export function readSignal(b: Uint8Array, off: number): RadioSignal {
  const rssi = signed(b[off]), q = signed(b[off + 1]);
  return q === SNR_NONE ? { rssi } : { rssi, snr: q / 4 };
}

/** A number a radio driver handed over as RSSI, if it is one (noble says 127 when it does not know). */
export function plausibleRssi(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v < 0 && v >= -150 ? v : undefined;
}
