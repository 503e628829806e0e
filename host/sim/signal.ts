// Received signal strength in the simulator, as a gateway's radio would report it. Each board stands at a
// distance from the gateway, drawn once (log-uniformly, so near and far boards are both common); every packet
// it sends arrives with the log-distance path loss of that distance plus Gaussian shadowing/fading noise:
//
//   RSSI = txPower - (PL(1 m) + 10 n log10(d)) + N(0, sigma)      clamped to what the receiver reports
//   SNR  = RSSI - noise floor (LoRa: -174 dBm/Hz + 10 log10(125 kHz) + 6 dB NF = -117 dBm), capped at +10 dB
//
// LoRa (868 MHz, 14 dBm, n = 3 outdoors, 30 m to 2.5 km) gives about -60 to -120 dBm; BLE (2.4 GHz, 0 dBm,
// n = 2.5 indoors, 1 to 30 m) about -40 to -80 dBm. All draws come from the seeded random numbers the
// model is given, so a run replays exactly from its seed.
import type { RadioSignal } from "../gateway/radio-signal";

export type SignalProfile = {
  txDbm: number; lossAt1mDb: number; exponent: number; nearM: number; farM: number; sigmaDb: number;
  /** What the receiver reports at most and at least (dBm). */
  ceilingDbm: number; floorDbm: number;
  /** LoRa: the noise floor (dBm) SNR is measured against; BLE radios report no SNR. */
  noiseDbm?: number;
};

export const LORA_SIGNAL: SignalProfile = { txDbm: 14, lossAt1mDb: 31, exponent: 3, nearM: 30, farM: 2500, sigmaDb: 3, ceilingDbm: -30, floorDbm: -120, noiseDbm: -117 };
export const BLE_SIGNAL: SignalProfile = { txDbm: 0, lossAt1mDb: 40, exponent: 2.5, nearM: 1, farM: 30, sigmaDb: 4, ceilingDbm: -40, floorDbm: -95 };

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

export class SignalModel {
  /** Each board's mean RSSI (dBm) at its distance, drawn the first time it is heard. */
  private readonly base = new Map<string, number>();

  constructor(private readonly profile: SignalProfile, private readonly rand: () => number) {}

  /** What the gateway's radio reports for one packet from `board`. */
  sample(board: string): RadioSignal {
    const p = this.profile;
    const rssi = Math.round(clamp(this.mean(board) + p.sigmaDb * this.gaussian(), p.floorDbm, p.ceilingDbm));
    if (p.noiseDbm === undefined) return { rssi };
    return { rssi, snr: Math.round(clamp(rssi - p.noiseDbm + this.gaussian(), -20, 10) * 4) / 4 };
  }

  private mean(board: string): number {
    let m = this.base.get(board);
    if (m === undefined) {
      const p = this.profile;
      const d = p.nearM * (p.farM / p.nearM) ** this.rand();
      m = p.txDbm - (p.lossAt1mDb + 10 * p.exponent * Math.log10(d));
      this.base.set(board, m);
    }
    return m;
  }

  /** A standard normal draw (Box-Muller). */
  private gaussian(): number {
    const u = 1 - this.rand(), v = this.rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}
