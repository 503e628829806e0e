// What the gateways report of themselves (GATEWAY_STATUS, host/backbone/gateway-status.ts), kept for the
// console, the admin API and /metrics: each gateway's own queues as it last reported them, and each device's
// radio signal (last RSSI, smoothed RSSI, LoRa SNR) from the gateway that last heard it.
//
// Live data, in this process's memory only: in a cluster, a controller knows the reports of the gateways
// connected to it; another controller shows no signal for their devices and no queues for those gateways
// (until a gateway fails over to it, and then reports everything again). Relay gateways report their queues,
// never a signal: their device records go up as RELAY_UP, which has no room for one.
import type { Registry } from "prom-client";
import { readGatewayStatus, type DeviceQueue, type GatewayReport } from "../../backbone/gateway-status";
import { metric } from "../cluster/metrics";

/** A device's signal as the fleet view shows it. */
export type SignalRow = { link: "ble" | "lora"; rssi: number; rssiAvg: number; snr: number | null; gateway: string; at: string };
/** A gateway's own queues as it reported them (devices named by their ids here). */
export type GatewayQueues = Omit<GatewayReport, "signals"> & { at: string };

type Kept = { link: "ble" | "lora"; rssi: number; rssiAvg: number; snr: number | null; gateway: string; at: number };

/** Buckets of the devices-by-RSSI gauge histogram (dBm, upper bounds). */
const RSSI_BUCKETS = [-120, -110, -100, -90, -80, -70, -60, -50, -40];

export class GatewayReports {
  private readonly signals = new Map<string, Kept>();
  private readonly gateways = new Map<string, GatewayQueues>();
  /** GATEWAY_STATUS bodies that did not decode. */
  malformed = 0;

  constructor(private readonly maxDevices = 1_000_000) {}

  /** A GATEWAY_STATUS body from gateway `gw`; device peers are named by `deviceOf`. False when malformed. */
  take(gw: string, body: Uint8Array, deviceOf: (peer: string) => string, now: number): boolean {
    const r = readGatewayStatus(body);
    if (typeof r === "string") {
      this.malformed++;
      return false;
    }
    const named = (q: DeviceQueue): DeviceQueue => ({ ...q, device: deviceOf(q.device) });
    const { signals, ...own } = r;
    this.gateways.set(gw, { ...own, queues: own.queues.map(named), at: new Date(now).toISOString() });
    for (const s of signals) {
      const device = deviceOf(s.device);
      if (!this.signals.has(device) && this.signals.size >= this.maxDevices) this.signals.delete(this.signals.keys().next().value as string);
      this.signals.set(device, { link: s.link, rssi: s.rssi, rssiAvg: s.rssiAvg, snr: s.snr ?? null, gateway: gw, at: now });
    }
    return true;
  }

  signal(device: string): SignalRow | null {
    const k = this.signals.get(device);
    return k === undefined ? null : { ...k, at: new Date(k.at).toISOString() };
  }

  queues(gateway: string): GatewayQueues | null {
    return this.gateways.get(gateway) ?? null;
  }

  /**
   * sesame_devices_by_rssi{link, le}: how many devices' smoothed RSSI is at or below each bound (a gauge
   * histogram: 2 links x 10 buckets, whatever the fleet's size), over devices reported within `windowMs`.
   */
  register(registry: Registry, windowMs: number, now: () => number = Date.now): void {
    registry.registerMetric(metric("sesame_devices_by_rssi", "Devices by their smoothed RSSI (dBm) as their gateway last reported it, cumulative (le), by link (ble, lora).", "gauge", () => {
      const counts = { ble: new Array<number>(RSSI_BUCKETS.length + 1).fill(0), lora: new Array<number>(RSSI_BUCKETS.length + 1).fill(0) };
      const since = now() - windowMs;
      for (const s of this.signals.values()) {
        if (s.at < since) continue;
        const c = counts[s.link];
        for (let i = 0; i < RSSI_BUCKETS.length; i++) if (s.rssiAvg <= RSSI_BUCKETS[i]) c[i]++;
        c[RSSI_BUCKETS.length]++;
      }
      return (["ble", "lora"] as const).flatMap((link) => counts[link].map((value, i) => ({ labels: { link, le: i < RSSI_BUCKETS.length ? String(RSSI_BUCKETS[i]) : "+Inf" }, value })));
    }));
  }
}
