// The gateway's simulator link authenticates its peer: a challenge-response over both sides' nonces with a
// shared secret before any frame is taken. Issue 10: any local client could take the port, the newest one
// winning (readings fell from 36 to 4 per 20 s while another client held it).
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import * as net from "node:net";
import {
  encodeSimFrame, SIM_CHALLENGE, SIM_PACKET_UP, SIM_RESPONSE, SIM_WELCOME, simFrameReader, SimLinkClient, SimLinkServer,
} from "../../../host/gateway/simlink";
import { silentFlood } from "../../../scripts/lib/flood";
import { until } from "../../harness/until";

const secret = randomBytes(32);
const mac = (key: Uint8Array, who: string, ng: Uint8Array, ns: Uint8Array) => createHmac("sha256", key).update(`sesame sim link v1 ${who}`).update(ng).update(ns).digest();

/** A raw client: `authenticate` runs the handshake as docs and simlink.ts describe it, written out again here. */
function rawClient(port: number) {
  const s = net.connect(port, "127.0.0.1");
  const state = { closed: false, frames: [] as { type: number; bytes: Uint8Array }[] };
  s.on("data", simFrameReader((type, _l, bytes) => state.frames.push({ type, bytes }), () => s.destroy()));
  s.on("error", () => {});
  s.on("close", () => (state.closed = true));
  return {
    s, state,
    async authenticate(key: Uint8Array): Promise<boolean> {
      await until(() => state.frames.length > 0 || state.closed, "the challenge");
      const ch = state.frames.shift()!;
      assert.equal(ch.type, SIM_CHALLENGE);
      const ns = randomBytes(32);
      s.write(encodeSimFrame(SIM_RESPONSE, "", Buffer.concat([ns, mac(key, "simulator", ch.bytes, ns)])));
      await until(() => state.frames.length > 0 || state.closed, "the welcome, or the door shut");
      const w = state.frames.shift();
      if (w === undefined) return false;
      assert.equal(w.type, SIM_WELCOME);
      assert.deepEqual(Buffer.from(w.bytes), mac(key, "gateway", ch.bytes, ns), "the gateway proved the secret");
      return true;
    },
  };
}

describe("simulator link: only a simulator holding the secret gets in", function () {
  this.timeout(60_000);
  let server: SimLinkServer;
  let port: number;
  const got: string[] = [];
  const cleanup: (() => void)[] = [];
  beforeEach(async () => {
    got.length = 0;
    server = new SimLinkServer({ packet: (l, b, signal) => void got.push(`${l}:${Buffer.from(b).toString()}${signal ? ` ${JSON.stringify(signal)}` : ""}`), connected: () => {}, disconnected: () => {} }, secret);
    port = await server.listen(0);
  });
  afterEach(async () => {
    for (const f of cleanup.splice(0)) f();
    await server.close();
  });
  const client = (key: Uint8Array) => {
    const c = new SimLinkClient("127.0.0.1", port, key);
    cleanup.push(() => c.close());
    return c;
  };

  it("takes no frame from a client that skips the handshake or holds another secret, and keeps the simulator it has", async () => {
    const sim = client(secret);
    await until(() => sim.attached && server.attached, "the simulator authenticated");
    sim.input("ble:a", Buffer.from("1"));
    await until(() => got.length === 1, "its packet");
    // A client that sends packets straight away: closed, nothing taken.
    const rude = rawClient(port);
    cleanup.push(() => rude.s.destroy());
    rude.s.write(encodeSimFrame(SIM_PACKET_UP, "ble:a", Buffer.from("forged")));
    await until(() => rude.state.closed, "the rude client closed");
    assert.deepEqual(got, ["ble:a:1"], "a frame from an unauthenticated client was taken");
    // A client with the wrong secret: refused, again and again as it retries.
    const wrong = client(randomBytes(32));
    await until(() => server.dropped["bad-auth"] >= 3, "the wrong secret refused");
    assert.equal(wrong.attached, false);
    // The simulator was never displaced.
    sim.input("ble:a", Buffer.from("2"));
    await until(() => got.length === 2, "its next packet");
    assert.deepEqual(got, ["ble:a:1", "ble:a:2"]);
    assert.equal(sim.connects, 1, "the simulator had to reconnect");
  });

  it("carries each packet's radio signal (RSSI, LoRa SNR) with it, and a packet without one as before", async () => {
    const sim = client(secret);
    await until(() => sim.attached && server.attached, "the simulator authenticated");
    sim.input("lora", Buffer.from("a"), 0, { rssi: -112, snr: -7.25 });
    sim.input("ble:b", Buffer.from("b"), 0, { rssi: -58 });
    sim.input("ble:b", Buffer.from("c"));
    await until(() => got.length === 3, "three packets");
    assert.deepEqual(got, ['lora:a {"rssi":-112,"snr":-7.25}', 'ble:b:b {"rssi":-58}', "ble:b:c"]);
  });

  it("a flood of silent connections from the simulator's own address neither keeps it out nor displaces it", async () => {
    const flood = silentFlood({ port, from: ["127.0.0.1"], perSecond: 300, maxMs: 30_000 });
    cleanup.push(() => flood.stop());
    await until(() => flood.opened >= 100, "the flood running");
    const sim = client(secret);
    await until(() => sim.attached, "the simulator in, during the flood", 30_000);
    await until(() => flood.opened >= 400, "more flood");
    sim.input("lora", Buffer.from("x"));
    await until(() => got.length === 1, "its packet");
    assert.equal(sim.connects, 1, "the flood displaced the simulator");
    assert.ok(server.dropped.evicted > 0, JSON.stringify(server.dropped));
  });

  it("closes a client that answers nothing within the deadline", async () => {
    const quiet = rawClient(port);
    cleanup.push(() => quiet.s.destroy());
    await until(() => quiet.state.closed, "the quiet client closed", 15_000);
    assert.equal(server.dropped.silent, 1);
  });

  it("a newer authenticated simulator replaces the one before (the old socket may be a dead one)", async () => {
    const first = rawClient(port);
    cleanup.push(() => first.s.destroy());
    assert.ok(await first.authenticate(secret));
    const second = client(secret);
    await until(() => second.attached && first.state.closed, "the first closed for the second");
    second.input("ble:b", Buffer.from("3"));
    await until(() => got.length === 1, "the second's packet");
    const stranger = rawClient(port);
    cleanup.push(() => stranger.s.destroy());
    assert.equal(await stranger.authenticate(randomBytes(32)), false);
    assert.ok(second.attached);
  });
});
