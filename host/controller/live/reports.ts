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
import { histogramSeries } from "../../telemetry/metrics";
import { metric } from "../cluster/metrics";

/** A device's signal as the fleet view shows it. */
export type SignalRow = { link: "ble" | "lora"; rssi: number; rssiAvg: number; snr: number | null; gateway: string; at: string };
/** A gateway's own queues as it reported them (devices named by their ids here). */
export type GatewayQueues = Omit<GatewayReport, "signals"> & { at: string };

type Kept = { link: "ble" | "lora"; rssi: number; rssiAvg: number; snr: number | null; gateway: string; at: number };

/** Buckets of the devices' RSSI gauge histogram (dBm, upper bounds; +Inf besides). */
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
   * sesame_device_rssi_dbm{link}: the devices' smoothed RSSI as a histogram per link (2 links x 10 buckets,
   * whatever the fleet's size), over devices reported within `windowMs`. A gauge histogram (OpenMetrics'
   * term): a snapshot of the fleet, whose counts fall as well as rise, so histogram_quantile() and heatmaps
   * apply and rate() does not. The text format has no such type; like the reference client (Python's
   * prometheus_client), it is exposed as a histogram, the one type whose series may carry `le`.
   */
  register(registry: Registry, windowMs: number, now: () => number = Date.now): void {
    const name = "sesame_device_rssi_dbm";
    registry.registerMetric(metric(name, "Devices by their smoothed RSSI (dBm) as their gateway last reported it, by link (ble, lora): a gauge histogram, a snapshot of the fleet (do not rate() it).", "histogram", () => {
      const histogram = () => ({ counts: new Array<number>(RSSI_BUCKETS.length).fill(0), count: 0, sum: 0 });
      const per = { ble: histogram(), lora: histogram() };
      const since = now() - windowMs;
      for (const s of this.signals.values()) {
        if (s.at < since) continue;
        const h = per[s.link];
        const i = RSSI_BUCKETS.findIndex((b) => s.rssiAvg <= b);
        if (i >= 0) h.counts[i]++;
        h.count++;
        h.sum += s.rssiAvg;
      }
      return (["ble", "lora"] as const).flatMap((link) => histogramSeries(name, { link }, RSSI_BUCKETS, per[link].counts, per[link].count, per[link].sum));
    }));
  }
}
