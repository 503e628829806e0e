// MQTT clients as applications run them (mqtt.js), and a raw TCP one for what no well-behaved client sends
// (a packet announced at 100 MB, a connection that never says CONNECT).
import { connect as tcpConnect, type Socket } from "node:net";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";

export type Login = { username: string; password: string };

export type AppClient = MqttClient & { got: { topic: string; body: string; retain: boolean }[]; gone: Promise<void> };

/** An application's client: logged in with `login` (none: anonymous), no reconnects, messages collected in `got`. */
export async function appClient(url: string, login: Login | undefined, opts: IClientOptions = {}): Promise<AppClient> {
  const c = (await connectAsync(url, { ...login, reconnectPeriod: 0, ...opts })) as AppClient;
  c.got = [];
  c.on("message", (topic, body, packet) => c.got.push({ topic, body: body.toString(), retain: packet.retain }));
  c.gone = new Promise((resolve) => c.once("close", () => resolve()));
  c.on("error", () => undefined);
  return c;
}

/** The CONNACK return code a login gets (0 = accepted), or "closed" when the broker cut the connection instead. */
export async function connackCode(url: string, login: Login | undefined, opts: IClientOptions = {}): Promise<number | "closed"> {
  try {
    // allowRetries false: a connection the broker cuts before CONNACK rejects instead of waiting for a retry.
    const c = await connectAsync(url, { ...login, reconnectPeriod: 0, connectTimeout: 5000, ...opts }, false);
    await c.endAsync(true);
    return 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return typeof code === "number" ? code : "closed";
  }
}

function mqttString(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

/** MQTT's variable-length "remaining length". */
export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** A raw TCP connection to the broker at `port` (127.0.0.1); resolves once connected, before any MQTT. */
export function rawSocket(port: number): Promise<Socket & { gone: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ port, host: "127.0.0.1" }) as Socket & { gone: Promise<void> };
    s.gone = new Promise((r) => s.once("close", () => r()));
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** A raw connection that has logged in (MQTT 3.1.1 CONNECT, clean session); rejects unless CONNACK says 0. */
export async function rawLogin(port: number, login: Login, clientId = `raw-${process.pid}-${Math.random().toString(16).slice(2, 8)}`): Promise<Socket & { gone: Promise<void> }> {
  const s = await rawSocket(port);
  s.on("error", () => undefined);
  const body = Buffer.concat([mqttString("MQTT"), Buffer.from([4, 0xc2, 0, 60]), mqttString(clientId), mqttString(login.username), mqttString(login.password)]);
  s.write(Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]));
  const connack = await new Promise<Buffer>((resolve, reject) => {
    s.once("data", resolve);
    s.once("close", () => reject(new Error("closed before CONNACK")));
  });
  if (connack[0] !== 0x20 || connack[3] !== 0) throw new Error(`CONNACK refused: ${connack.toString("hex")}`);
  return s;
}
