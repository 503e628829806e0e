// The processes under `sesame start` (and `--cluster`), killed with -9 one at a time while an application
// watches the readings as applications do (a login of its own, reconnecting): how long until every board's
// readings reach it again, and which message ids it never got.
import mqtt from "mqtt";
import type { Outcome } from "./mqtt";
import { sleep, waitFor, type Target } from "./target";

type Part = "gateway" | "controller" | "mosquitto" | "postgres";

/** Arrivals at the application: per device, the message ids it got and when the first one after `since` came. */
export class Watch {
  arrivals = 0;
  readonly ids = new Map<string, Set<number>>();
  readonly firstAfter = new Map<string, number>();
  since = Infinity;

  take(body: Buffer): void {
    this.arrivals++;
    const r = JSON.parse(body.toString()) as { device: string; seq: number };
    if (!this.ids.has(r.device)) this.ids.set(r.device, new Set());
    this.ids.get(r.device)!.add(r.seq);
    const now = Date.now();
    if (now > this.since && !this.firstAfter.has(r.device)) this.firstAfter.set(r.device, now);
  }

  /** Ids missing between each device's first and last reading. */
  missing(): { got: number; missing: number } {
    let got = 0, missing = 0;
    for (const ids of this.ids.values()) {
      const s = [...ids].sort((a, b) => a - b);
      got += s.length;
      missing += s[s.length - 1] - s[0] + 1 - s.length;
    }
    return { got, missing };
  }
}

/** The application's login (from access.json), subscribed to every reading, reconnecting as applications do. */
export async function watchApplication(t: Target): Promise<{ w: Watch; stop: () => Promise<void> }> {
  const w = new Watch();
  const app = await mqtt.connectAsync(t.access.mqtt, { username: t.access.mqttUser, password: t.access.mqttPassword, reconnectPeriod: 500, connectTimeout: 5000 });
  app.on("message", (_topic, body) => w.take(body));
  await app.subscribeAsync("sesame/devices/+/up", { qos: 1 });
  app.on("connect", () => void app.subscribeAsync("sesame/devices/+/up", { qos: 1 }).catch(() => {})); // a broker that restarted forgot it
  return { w, stop: () => app.endAsync(true) };
}

/** kill -9 of one part: seconds until every BLE board (5 s period) has delivered again, 120 at most. */
export async function killPart(t: Target, name: Part): Promise<Outcome> {
  const c = t.child(name);
  if (!c) return { result: `no ${name} process`, held: false };
  const { w, stop } = await watchApplication(t);
  await sleep(15_000); // three periods of a BLE board (5 s); a LoRa-only board's is 120 s, too long to wait for
  const boards = [...w.ids].filter(([, ids]) => ids.size >= 2).map(([d]) => d);
  process.kill(c.pid, "SIGKILL");
  w.since = Date.now();
  const after = () => boards.map((d) => w.firstAfter.get(d)).filter((x) => x !== undefined).map((x) => (x - w.since) / 1000);
  const back = await waitFor(() => (after().length === boards.length ? true : undefined), 120_000, 250);
  const each = after().sort((a, b) => a - b);
  await sleep(20_000); // what was held while the part was away arrives
  await stop();
  const { got, missing } = w.missing();
  const said = t.stderr.some((l) => new RegExp(`the ${name}( \\d+)? died`).test(l));
  return {
    result: (back ? `every BLE board's readings reach the application again after ${each[each.length - 1].toFixed(1)} s (each: ${each.map((x) => x.toFixed(1)).join(", ")})` : `${each.length} of ${boards.length} BLE boards delivered again in 120 s`) +
      `${said ? ", the death said at once" : ""}; ${got} readings, ${missing} message ids missing`,
    held: back === true,
  };
}
