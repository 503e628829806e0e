// The MQTT door, tried as an attacker with no credentials would, and watched as an application with the
// credential the operator got would.
import mqtt, { type MqttClient } from "mqtt";
import { rssMb, sleep, type Target } from "./target";

export type Outcome = { result: string; held: boolean };

async function connect(url: string, auth?: { username?: string; password?: string }): Promise<MqttClient | string> {
  try {
    return await mqtt.connectAsync(url, { ...auth, reconnectPeriod: 0, connectTimeout: 5000 });
  } catch (e) {
    return (e as Error).message;
  }
}

/** The application's view: the credential `sesame start` gave, or none where the tree has no such thing. */
function asApplication(t: Target): Promise<MqttClient | string> {
  return connect(t.access.mqtt, t.access.mqttUser ? { username: t.access.mqttUser, password: t.access.mqttPassword } : undefined);
}

async function firstDevice(t: Target): Promise<string> {
  const r = await t.admin("GET", "/v1/devices");
  return ((r.json as { devices: { id: string; board: string }[] }).devices.find((d) => d.board === "puckjs") ?? (r.json as { devices: { id: string }[] }).devices[0]).id;
}

export async function anonymousSubscribe(t: Target): Promise<Outcome> {
  const c = await connect(t.access.mqtt);
  if (typeof c === "string") return { result: `refused: ${c}`, held: true };
  let up = 0;
  c.on("message", (topic) => void (topic.endsWith("/up") && up++));
  const granted = await c.subscribeAsync("sesame/#", { qos: 1 }).catch(() => []);
  await sleep(20_000);
  await c.endAsync();
  const refused = granted.every((g) => g.qos === 128);
  return { result: `${up} readings in 20 s${refused ? " (subscription refused)" : ""}`, held: up === 0 };
}

/** Sets the reading period to 1 s with no credentials; the board obeyed if its readings come five times as fast. */
export async function anonymousCommand(t: Target): Promise<Outcome> {
  const id = await firstDevice(t);
  const app = await asApplication(t);
  if (typeof app === "string") return { result: `cannot watch: ${app}`, held: false };
  const seen: number[] = [];
  app.on("message", () => seen.push(Date.now()));
  await app.subscribeAsync(`sesame/devices/${id}/up`, { qos: 1 });
  const c = await connect(t.access.mqtt);
  let sent = "refused at CONNECT";
  if (typeof c !== "string") {
    await c.publishAsync(`sesame/devices/${id}/down`, JSON.stringify({ payload: Buffer.from([1, 0, 1]).toString("base64") }), { qos: 1 }).then(() => (sent = "published"), (e: Error) => (sent = e.message));
    await c.endAsync();
  }
  await sleep(5_000); // the command reaches the board with its next reading's acknowledgement
  const from = Date.now();
  await sleep(15_000);
  await app.endAsync();
  const n = seen.filter((x) => x >= from).length;
  // Put the board back the legitimate way is not possible anonymously once fixed; the period of 1 s is harmless here.
  return { result: `${sent}; the board then sent ${n} readings in 15 s (period 5 s gives 3)`, held: n <= 5 };
}

/** A retained fake reading on a device's up topic: does a later subscriber get it? */
export async function retainedFake(t: Target): Promise<Outcome> {
  const id = await firstDevice(t);
  const c = await connect(t.access.mqtt);
  let sent = "refused at CONNECT";
  const fake = JSON.stringify({ device: id, seq: 999999, receivedAt: new Date().toISOString(), payload: "AAAA", size: 3, gateway: null, transport: null });
  if (typeof c !== "string") {
    await c.publishAsync(`sesame/devices/${id}/up`, fake, { qos: 1, retain: true }).then(() => (sent = "published"), (e: Error) => (sent = e.message));
    await c.endAsync();
  }
  const app = await asApplication(t);
  if (typeof app === "string") return { result: `${sent}; cannot watch: ${app}`, held: false };
  let got = false;
  app.on("message", (_t, body) => void (body.toString() === fake && (got = true)));
  await app.subscribeAsync(`sesame/devices/${id}/up`, { qos: 1 });
  await sleep(3_000);
  await app.endAsync();
  return { result: `${sent}; a later subscriber ${got ? "got the fake as a reading" : "did not get it"}`, held: !got };
}

/** Two retained publishes of 100 and 200 MB: the controller's resident memory before and after. */
export async function retainedFlood(t: Target): Promise<Outcome> {
  // In a cluster the broker is Mosquitto: its memory is watched beside the controller's.
  const who = t.cluster ? "controller and broker" : "controller";
  const pids = [t.child("controller")?.pid, ...(t.cluster ? [t.child("mosquitto")?.pid] : [])];
  if (pids.some((p) => p === undefined)) return { result: `no ${who} process`, held: false };
  const rss = () => pids.reduce<number>((n, p) => n + rssMb(p!), 0);
  const before = rss();
  const outcomes: string[] = [];
  for (const mb of [100, 200]) {
    const c = await connect(t.access.mqtt, t.access.mqttUser ? { username: t.access.mqttUser, password: t.access.mqttPassword } : undefined);
    if (typeof c === "string") {
      outcomes.push(`${mb} MB: refused at CONNECT`);
      continue;
    }
    const closed = new Promise<string>((r) => c.once("close", () => r("disconnected")));
    const done = c.publishAsync(`sesame/devices/flood${mb}/up`, Buffer.alloc(mb << 20, 0x41), { qos: 1, retain: true }).then(() => "accepted", (e: Error) => e.message);
    outcomes.push(`${mb} MB: ${await Promise.race([done, closed, sleep(60_000).then(() => "no answer in 60 s")])}`);
    c.end(true);
  }
  await sleep(5_000);
  const after = rss();
  return { result: `${outcomes.join(", ")}; ${who} RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MB`, held: after - before < 50 };
}

