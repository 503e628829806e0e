// The gateway's LoRa modem link over a real serial line (a socat pty pair) to a fake RAK3172 that keeps the
// hardware's rules (test/harness/lora-modem-fake.ts), with a firmware endpoint as the device on the far side
// of the air and the gateway's DeviceGateway on the near side.
import assert from "node:assert/strict";
import { join } from "node:path";
import { memoryStorage } from "../../../firmware/runtime/facade";
import { encodeData, messageId, messageKind, ackCount, MSG_ACK } from "../../../firmware/runtime/messages";
import { Endpoint, EndpointConfig, epInput, epNew, epReady, epStart, epTakeInbox, epTakeOutput } from "../../../firmware/session/endpoint";
import { SaPolicy } from "../../../firmware/session/sa";
import { sessionSend } from "../../../firmware/session/session";
import { SUITE_CONSTRAINED } from "../../../firmware/suite";
import { hostProvider } from "../../../host/crypto/provider";
import { hostCodec } from "../../../host/record/gpcomp";
import { DeviceGateway, LORA, TID_LORA, Uplink } from "../../../host/gateway/devices";
import { LoraModemLink, LoraModemOptions } from "../../../host/gateway/links/lora-modem";
import { P2P_DEFAULTS, p2pAirtimeMs } from "../../../host/gateway/links/lora-p2p";
import type { RadioSignal } from "../../../host/gateway/radio-signal";
import { Logger } from "../../../host/telemetry/log";
import { FakeRak3172 } from "../../harness/lora-modem-fake";
import { hasSocat, PtyPair } from "../../harness/pty-pair";
import { until } from "../../harness/until";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function logger(lines: string[]): Logger {
  return Logger.create({ level: "debug", stream: { write: (l: string) => lines.push(l) } });
}

/** A gateway's device side and one dh device, keys registered, as host/gateway/gateway.ts arranges them. */
function pair() {
  const p = hostProvider;
  const store = memoryStorage();
  const policy = (): SaPolicy => ({ suite: SUITE_CONSTRAINED, p, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store, codec: hostCodec, compress: false });
  const gwKeys = p.keyPair(), me = p.keyPair();
  const kid = Uint8Array.of(0x10, 0, 0, 7);
  const base = { responderFirst: false, p, sliceSteps: 0, retryMs: 30_000, pskI: undefined, pskR: undefined, pskStore: undefined, spiLive: () => false };
  const gw = new DeviceGateway({
    storage: store,
    config: () => ({ ...base, initiator: false, dh: true, policy: policy(), dhI: undefined, dhR: { p, me: gwKeys, lookup: (k) => (hex(k) === hex(kid) ? me.S : undefined) } }),
  });
  const cfg: EndpointConfig = { ...base, initiator: true, dh: true, policy: policy(), dhR: undefined, dhI: { p, kid, me, peer: gwKeys.S } };
  const ep = epNew(cfg);
  ep.transport = TID_LORA; // its handshake runs on LoRa, as the runtime's restart() sets it
  return { gw, ep };
}

type World = { gw: DeviceGateway; ep: Endpoint; modem: LoraModemLink; fake: FakeRak3172; ups: Uplink[]; acked: number[]; logs: string[]; signals: (RadioSignal | undefined)[]; device: (frame?: Uint8Array) => void };

/** The device answers what it hears, one frame at a time, sending only when the gateway listens. */
function deviceSide(w: Omit<World, "modem" | "device">): (frame?: Uint8Array) => void {
  let chain = Promise.resolve();
  return (frame) => {
    if (frame) epInput(w.ep, frame, TID_LORA, Date.now());
    for (const m of epTakeInbox(w.ep)) if (messageKind(m) === MSG_ACK) for (let k = 0; k < ackCount(m); k++) w.acked.push(messageId(m, k));
    for (const o of epTakeOutput(w.ep)) {
      chain = chain.then(async () => {
        await w.fake.whenListening();
        await w.fake.deviceTransmit(o.bytes);
      });
    }
  };
}

describe("LoRa modem link (RAK3172 over a serial line)", function () {
  let pty: PtyPair | undefined;
  const open: { close(): Promise<void> }[] = [];

  before(function () {
    if (!hasSocat()) this.skip(); // socat makes the serial pair; .ci/run installs it
  });
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
    pty?.close();
    pty = undefined;
  });

  async function world(over: Partial<LoraModemOptions> = {}): Promise<World> {
    pty = await PtyPair.open();
    const fake = await FakeRak3172.open(pty.b);
    open.push(fake);
    const { gw, ep } = pair();
    const partial = { gw, ep, fake, ups: [] as Uplink[], acked: [] as number[], logs: [] as string[], signals: [] as (RadioSignal | undefined)[] };
    const modem: LoraModemLink = new LoraModemLink({ path: pty.a, log: logger(partial.logs), commandTimeoutMs: 300, p2p: P2P_DEFAULTS, ...over }, {
      // The minimal adapter host/gateway/gateway.ts is to the link: packets in, uplinks and downlinks out.
      input: (link, bytes, signal) => {
        partial.signals.push(signal);
        gw.input(link, bytes, Date.now());
        partial.ups.push(...gw.takeUplinks());
        for (const o of gw.takeOutput()) modem.send(o);
      },
    });
    open.push(modem);
    const w = { ...partial, modem, device: deviceSide(partial) };
    fake.on("air", w.device);
    assert.equal(await modem.open(), true, w.logs.join(""));
    return w;
  }

  it("completes a handshake over the modem, delivers readings and brings their acknowledgements back", async () => {
    const w = await world();
    epStart(w.ep, Date.now());
    w.device();
    await until(() => epReady(w.ep), "the device's session opened");
    for (let id = 1; id <= 3; id++) sessionSend(w.ep.session!, encodeData(id, Buffer.from(`reading ${id}`)), Date.now());
    w.device();
    await until(() => [1, 2, 3].every((id) => w.acked.includes(id)), "readings 1..3 acknowledged");
    assert.deepEqual(w.ups.map((u) => [u.id, Buffer.from(u.body).toString(), u.link]), [1, 2, 3].map((id) => [id, `reading ${id}`, LORA]));
    assert.ok(w.ep.confirmed);
    // The modem was set up for P2P and every transmission was framed by leaving and re-entering receive,
    // which is why it never answered busy.
    const c = w.fake.commands;
    await until(() => w.modem.queued === 0 && c[c.length - 1] === "AT+PRECV=65534", "the modem back in receive after the last downlink");
    assert.ok(c.includes("AT+NWM=0") && c.includes("AT+P2P=869525000:9:125:0:8:14") && c.includes("AT+PRECV=65534"), c.join(" "));
    c.forEach((cmd, i) => {
      if (cmd.startsWith("AT+PSEND=")) assert.deepEqual([c[i - 1], c[i + 1]], ["AT+PRECV=0", "AT+PRECV=65534"], `around command ${i}`);
    });
    assert.equal(w.modem.stats.busy, 0);
    assert.equal(w.modem.stats.sent, w.fake.sent.length);
    assert.ok(w.modem.stats.sent >= 2 && w.modem.stats.received >= 3, JSON.stringify(w.modem.stats));
  });

  it("drops and counts lines that mean nothing, and carries on", async () => {
    const w = await world();
    const before = w.modem.stats.badLines;
    w.fake.emitLine("\u0000\u00ff garbage from a noisy line");
    w.fake.emitLine("+EVT:RXP2P:-60:8:ABC"); // odd hex
    w.fake.emitLine("+EVT:RXP2P:-60:8:"); // no frame
    await until(() => w.modem.stats.badLines === before + 3, "three bad lines counted");
    const frame = Uint8Array.of(1, 2, 3);
    assert.equal(await w.fake.deviceTransmit(frame, -104, -7), true);
    await until(() => w.modem.stats.received === 1, "a good frame after the garbage delivered");
    assert.deepEqual(w.signals, [{ rssi: -104, snr: -7 }], "the frame's RSSI and SNR as the modem reported them");
    assert.equal(w.gw.stats.packets, 1); // and it reached the gateway (which judges three bytes as it will)
  });

  it("refuses and counts a downlink over the spreading factor's limit, and never sends it", async () => {
    const w = await world();
    assert.equal(w.modem.maxPayload, 115); // SF9
    assert.equal(w.modem.send({ link: LORA, bytes: new Uint8Array(116) }), false);
    assert.equal(w.modem.stats.tooBig, 1);
    assert.equal(w.modem.send({ link: LORA, bytes: new Uint8Array(115).fill(7) }), true);
    await until(() => w.modem.stats.sent === 1, "the largest allowed frame sent");
    assert.deepEqual(w.fake.sent.map((f) => f.length), [115]);
    assert.ok(!w.fake.commands.some((c) => c.length > "AT+PSEND=".length + 2 * 115), "no oversize PSEND reached the modem");
  });

  it("keeps the downlink duty cycle: a frame that would pass the hour's budget waits", async () => {
    // 0.1 % = 3.6 s of air per hour; two 40-byte SF12 frames take ~2 s each.
    const p2p = { ...P2P_DEFAULTS, sf: 12 };
    assert.ok(2 * p2pAirtimeMs(p2p, 40) > 3600 && p2pAirtimeMs(p2p, 40) <= 3600);
    const w = await world({ p2p, dutyPermille: 1 });
    w.modem.send({ link: LORA, bytes: new Uint8Array(40).fill(1) });
    w.modem.send({ link: LORA, bytes: new Uint8Array(40).fill(2) });
    await until(() => w.modem.stats.sent === 1 && w.modem.stats.dutyWaits > 0 && w.fake.listening, "first frame sent, second held back");
    assert.deepEqual(w.fake.sent.map((f) => f[0]), [1]);
    assert.equal(w.modem.queued, 1);
  });

  it("says once what to check when the port cannot be opened, and does not throw", async () => {
    const logs: string[] = [];
    const path = join("/nonexistent-dir", "ttyUSB9");
    const modem = new LoraModemLink({ path, log: logger(logs) }, { input: () => assert.fail("no input expected") });
    assert.equal(await modem.open(), false);
    assert.equal(logs.length, 1);
    const line = JSON.parse(logs[0]) as { level: string; msg: string };
    assert.equal(line.level, "warn");
    assert.match(line.msg, /cannot open serial port \/nonexistent-dir\/ttyUSB9 .*dialout.*carrying on without LoRa/);
    assert.equal(modem.send({ link: LORA, bytes: Uint8Array.of(1) }), false);
  });
});

describe("fake RAK3172 (the rules the link is tested against)", function () {
  before(function () {
    if (!hasSocat()) this.skip();
  });

  it("answers busy to PSEND while listening or transmitting, and param error over the SF's limit", async () => {
    const pty = await PtyPair.open();
    const fake = await FakeRak3172.open(pty.b);
    const { SerialPort } = await import("serialport");
    const host = new SerialPort({ path: pty.a, baudRate: 115200 });
    const seen: string[] = [];
    host.on("data", (d: Buffer) => seen.push(...d.toString().split("\r\n").filter((s) => s !== "")));
    const ask = async (cmd: string, n = 1) => {
      const at = seen.length;
      host.write(cmd + "\r\n");
      await until(() => seen.length >= at + n, `an answer to ${cmd}`);
      return seen.slice(at, at + n);
    };
    try {
      await ask("AT+NWM=0");
      await until(() => seen.some((s) => s.startsWith("Current Work Mode")), "reboot banner");
      assert.deepEqual(await ask("AT+P2P=868000000:9:125:0:8:14"), ["OK"]);
      assert.deepEqual(await ask("AT+PRECV=65534"), ["OK"]);
      assert.deepEqual(await ask("AT+PSEND=0102"), ["AT_BUSY_ERROR"]);
      assert.deepEqual(await ask("AT+PRECV=0"), ["OK"]);
      assert.deepEqual(await ask("AT+PSEND=" + "00".repeat(116)), ["AT_PARAM_ERROR"]);
      assert.deepEqual(await ask("AT+PSEND=0102"), ["OK"]);
      assert.deepEqual(await ask("AT+PSEND=0102"), ["AT_BUSY_ERROR"]);
      await until(() => seen.includes("+EVT:TXP2P DONE"), "TXP2P DONE");
      assert.deepEqual(await ask("AT+FOO"), ["AT_COMMAND_NOT_FOUND"]);
    } finally {
      await new Promise((r) => host.close(r));
      await fake.close();
      pty.close();
    }
  });
});
