import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { memoryStorage } from "../../../firmware/runtime/facade";
import { ackCount, dataBody, encodeAck, encodeData, messageId, messageKind, MSG_ACK, MSG_DATA } from "../../../firmware/runtime/messages";
import { Endpoint, epInput, epNew, epStart, epTakeInbox, epTakeOutput } from "../../../firmware/session/endpoint";
import { sessionSend } from "../../../firmware/session/session";
import { SUITE_CONSTRAINED } from "../../../firmware/suite";
import { decodeBatch, FrameError, KIND_DOWNLINK, KIND_KEYS, KIND_SESSION_EVENT, KIND_SESSION_STATE, KIND_UPLINK, type Message, Uplink } from "../../../host/backbone/frame";
import { readSessionEvent } from "../../../host/backbone/session-event";
import { grantFor } from "../../../host/backbone/session-handoff";
import { backboneKeyPair } from "../../../host/backbone/handshake";
import { hostProvider, nodeKeyPair } from "../../../host/crypto/provider";
import { Gateway, RESPONDER_GRANT, UPLINK_HEAD } from "../../../host/gateway/gateway";
import { readGatewayStatus, type GatewayReport } from "../../../host/backbone/gateway-status";
import { silentLogger } from "../../../host/telemetry/log";
import { collectGarbage } from "../../harness/gc";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** A terminating gateway (its backbone never started) and a dh device with a confirmed session through it. */
function world() {
  const responder = nodeKeyPair();
  const gw = new Gateway({ mode: "terminate", identity: { kid: randomBytes(4), keys: backboneKeyPair() }, controller: { host: "127.0.0.1", port: 9, publicKey: backboneKeyPair().S }, log: silentLogger() });
  gw.client.emit("message", { kind: KIND_KEYS, device: Buffer.from(RESPONDER_GRANT), payload: Buffer.from(`public=${hex(responder.S)};secret=${hex(responder.s)}`) });
  const me = nodeKeyPair(), kid = Uint8Array.of(0x10, 0, 0, 7);
  gw.keys.setDh(hex(kid), hex(kid), me.S);
  const policy = { suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store: memoryStorage(), codec: undefined, compress: false };
  const ep: Endpoint = epNew({
    initiator: true, dh: true, responderFirst: false, p: hostProvider, policy, sliceSteps: 0, retryMs: 30_000, dhI: { p: hostProvider, kid, me, peer: responder.S },
    dhR: undefined, pskI: undefined, pskR: undefined, pskStore: undefined, spiLive: () => false,
  });
  const link = "ble:d7";
  epStart(ep, Date.now());
  for (let round = 0; round < 4; round++) {
    for (const o of epTakeOutput(ep)) gw.input(link, o.bytes);
    for (const o of gw.takeOutput()) epInput(ep, o.bytes, 1, Date.now());
  }
  assert.ok(ep.confirmed);
  return { gw, ep, link, kid };
}

/**
 * Everything the gateway has queued for the controller since the last call, decoded; each session it hands
 * over is granted as the controller would (host/controller/session-store.ts), so its ACKs may be sealed.
 */
function drained(gw: Gateway): Message[] {
  const out: Message[] = [];
  while (gw.client.peer.out.hasUnsent) {
    const chunks: Uint8Array[] = [];
    gw.client.peer.out.takeBatch(chunks, 1 << 20, 1 << 14);
    const ms = decodeBatch(Buffer.concat(chunks));
    assert.ok(!(ms instanceof FrameError), String(ms));
    for (const m of ms) {
      out.push(m);
      const grant = m.kind === KIND_SESSION_STATE ? grantFor(m) : undefined;
      if (grant !== undefined) gw.client.emit("message", grant);
    }
  }
  return out;
}

/** The readings among drained(). */
function queued(gw: Gateway): Uplink[] {
  return drained(gw).filter((m): m is Uplink => m.kind === KIND_UPLINK);
}

/** The ids the device's ACKs name, from the gateway's output. */
/** The controller acknowledges the backbone messages below `base`; the ACK records it releases are sealed on the next check phase. */
async function controllerAcked(gw: Gateway, base: number): Promise<void> {
  gw.client.emit("acked", base);
  await new Promise((r) => setImmediate(r));
}

function acked(gw: Gateway, ep: Endpoint): number[] {
  const ids: number[] = [];
  for (const o of gw.takeOutput()) epInput(ep, o.bytes, 1, Date.now());
  for (const m of epTakeInbox(ep)) if (messageKind(m) === MSG_ACK) for (let k = 0; k < ackCount(m); k++) ids.push(messageId(m, k));
  return ids;
}

describe("Gateway (terminate): readings into the backbone queue, ACKs once the controller has them", () => {
  it("writes each reading into the queue as an UPLINK (device, id, time, reading) and acknowledges it only once the controller acknowledged that message", async () => {
    const { gw, ep, link, kid } = world();
    queued(gw); // the session event and anything else from the handshake
    const before = Date.now();
    const readings = [Buffer.from("first reading"), Buffer.from("second"), Buffer.from("a third, longer reading of sixty bytes or so, to cross blocks")];
    readings.forEach((r, i) => {
      sessionSend(ep.session!, encodeData(100 + i, r), Date.now());
      for (const o of epTakeOutput(ep)) gw.input(link, o.bytes);
    });
    const ups = queued(gw);
    assert.equal(ups.length, 3);
    ups.forEach((u, i) => {
      assert.equal(hex(u.device), hex(kid));
      const p = Buffer.from(u.payload);
      assert.equal(p.readUIntBE(0, 3), 100 + i, "message id");
      const at = p.readUIntBE(3, 6);
      assert.ok(at >= before && at <= Date.now(), "the time the gateway took it in");
      assert.equal(p.subarray(UPLINK_HEAD).toString(), readings[i].toString());
    });
    assert.deepEqual(acked(gw, ep), [], "nothing acknowledged before the controller has it");
    // The controller acknowledges the backbone messages up to the second reading's.
    const second = gw.client.peer.out.end - 2;
    await controllerAcked(gw, second + 1);
    assert.deepEqual(acked(gw, ep), [100, 101]);
    await controllerAcked(gw, gw.client.peer.out.end);
    assert.deepEqual(acked(gw, ep), [102]);
  });

  it("leaves a reading the full queue refused unacknowledged, and takes the device's next copy in as new", async () => {
    const { gw, ep, link } = world();
    const q = gw.client.peer.out;
    queued(gw);
    // Fill the queue to its message bound.
    const limit = q.limits.maxMessages;
    while (q.count < limit) assert.ok(q.reserve(KIND_UPLINK, Uint8Array.of(1), 1) >= 0);
    sessionSend(ep.session!, encodeData(7, Buffer.from("refused")), Date.now());
    for (const o of epTakeOutput(ep)) gw.input(link, o.bytes);
    assert.equal(gw.stats.dropped, 1);
    // The queue drains (the controller took everything); the device sends its copy again, and it goes up this time.
    queued(gw);
    q.ack(q.end);
    await controllerAcked(gw, q.end);
    assert.deepEqual(acked(gw, ep), []);
    sessionSend(ep.session!, encodeData(7, Buffer.from("refused")), Date.now());
    for (const o of epTakeOutput(ep)) gw.input(link, o.bytes);
    const ups = queued(gw);
    assert.equal(ups.length, 1);
    assert.equal(Buffer.from(ups[0].payload).subarray(UPLINK_HEAD).toString(), "refused");
    await controllerAcked(gw, q.end);
    assert.deepEqual(acked(gw, ep), [7]);
  });
});

/**
 * The report the gateway would send now, everything in it (as after a reconnect). Sessions are reported open
 * from the device side's poll, which the gateway's timer runs (never started here): run by hand first.
 */
function report(gw: Gateway): GatewayReport {
  gw.devices!.poll(Date.now());
  gw.status.reconnected();
  const r = readGatewayStatus(gw.status.next(Date.now())!.status);
  assert.ok(typeof r !== "string", r as string);
  return r;
}

describe("Gateway: closed", () => {
  it("is let go once closed and dropped, sessions and all (nothing process-wide keeps it)", async () => {
    // Its metrics' gauges read it: before, each gateway's process metrics (prom-client's GC observer, never
    // disconnected) kept it, and a process that made many gateways kept them all.
    const made = async () => {
      const w = world();
      const ref = new WeakRef(w.gw);
      await w.gw.close();
      return ref;
    };
    const refs: WeakRef<Gateway>[] = [];
    for (let k = 0; k < 3; k++) refs.push(await made());
    await new Promise((r) => setImmediate(r)); // a WeakRef holds its target until the job that made it ends
    collectGarbage();
    collectGarbage();
    assert.equal(refs.filter((r) => r.deref() !== undefined).length, 0, "a closed gateway is still reachable");
  });
});

describe("Gateway (terminate): GATEWAY_STATUS", () => {
  it("reports its queues, and each device's signal from the records of its session", () => {
    const { gw, ep, link, kid } = world();
    sessionSend(ep.session!, encodeData(5, Buffer.from("a reading")), Date.now());
    for (const o of epTakeOutput(ep)) gw.input(link, o.bytes, { rssi: -71 });
    const r = report(gw);
    assert.deepEqual([r.sessions, r.readings, r.commands], [1, 1, 0], "one session, its reading held until the controller has it");
    assert.ok(r.backbone.messages >= 2 && r.backbone.bytes > 0, JSON.stringify(r.backbone));
    assert.deepEqual(r.queues, [{ device: hex(kid), commands: 0, readings: 1 }]);
    assert.deepEqual(r.signals, [{ device: hex(kid), link: "ble", rssi: -71, rssiAvg: -71 }]);
    gw.client.emit("acked", gw.client.peer.out.end);
    assert.deepEqual([report(gw).readings, report(gw).queues], [0, []]);
  });
});

describe("Gateway (terminate) with its device side over two worker threads, shared out by SPI", () => {
  const wait = () => new Promise((r) => setTimeout(r, 10));
  async function until<T>(what: string, f: () => T | undefined): Promise<T> {
    for (let k = 0; k < 500; k++) {
      const v = f();
      if (v !== undefined) return v;
      await wait();
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** A gateway with two device workers and six dh devices with confirmed sessions, spread over both. */
  async function threadedWorld() {
    const responder = nodeKeyPair();
    const gw = new Gateway({
      mode: "terminate", identity: { kid: randomBytes(4), keys: backboneKeyPair() }, controller: { host: "127.0.0.1", port: 9, publicKey: backboneKeyPair().S },
      log: silentLogger(), deviceThreads: 2,
    });
    gw.client.emit("message", { kind: KIND_KEYS, device: Buffer.from(RESPONDER_GRANT), payload: Buffer.from(`public=${hex(responder.S)};secret=${hex(responder.s)}`) });
    const policy = { suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store: memoryStorage(), codec: undefined, compress: false };
    const devs: { ep: Endpoint; link: string; kid: Uint8Array }[] = [];
    const pending = new Map<string, Uint8Array[]>();
    gw.on("output", () => { for (const o of gw.takeOutput()) pending.set(o.link, [...(pending.get(o.link) ?? []), o.bytes]); });
    const deliver = (d: { ep: Endpoint; link: string }) => {
      const got = pending.get(d.link) ?? [];
      pending.delete(d.link);
      for (const b of got) epInput(d.ep, b, 1, Date.now());
      return got.length;
    };
    for (let i = 0; i < 6; i++) {
      const me = nodeKeyPair(), kid = Uint8Array.of(0x10, 0, 1, i);
      const grant = `mode=dh;kid=${hex(kid)};public=${hex(me.S)}`;
      gw.client.emit("message", { kind: KIND_KEYS, device: Buffer.from(hex(kid)), payload: Buffer.from(grant) });
      const ep = epNew({
        initiator: true, dh: true, responderFirst: false, p: hostProvider, policy, sliceSteps: 0, retryMs: 30_000, dhI: { p: hostProvider, kid, me, peer: responder.S },
        dhR: undefined, pskI: undefined, pskR: undefined, pskStore: undefined, spiLive: () => false,
      });
      devs.push({ ep, link: `ble:dev${i}`, kid });
    }
    for (const d of devs) epStart(d.ep, Date.now());
    for (let round = 0; round < 4; round++) {
      for (const d of devs) for (const o of epTakeOutput(d.ep)) gw.input(d.link, o.bytes);
      if (devs.every((d) => d.ep.confirmed)) break;
      await until("handshake answers", () => (devs.every((d) => d.ep.confirmed || pending.has(d.link)) ? true : undefined));
      for (const d of devs) deliver(d);
    }
    assert.ok(devs.every((d) => d.ep.confirmed), "every device has a confirmed session");
    const workers = new Set(devs.map((d) => d.ep.session!.out.spi % 2));
    assert.equal(workers.size, 2, "the sessions are spread over both workers");
    return { gw, devs, deliver };
  }

  it("handshakes, carries readings up and acknowledges them once the controller has them, for devices on both workers", async () => {
    const { gw, devs, deliver } = await threadedWorld();
    try {
      queued(gw);
      devs.forEach((d, i) => {
        sessionSend(d.ep.session!, encodeData(50 + i, Buffer.from(`reading of ${i}`)), Date.now());
        for (const o of epTakeOutput(d.ep)) gw.input(d.link, o.bytes, { rssi: -60 - i });
      });
      const ups: Uplink[] = [];
      await until("the readings in the backbone queue", () => (ups.push(...queued(gw)), ups.length >= devs.length ? true : undefined));
      assert.deepEqual(ups.map((u) => `${hex(u.device)}:${Buffer.from(u.payload).subarray(UPLINK_HEAD).toString()}`).sort(), devs.map((d, i) => `${hex(d.kid)}:reading of ${i}`).sort());
      await wait();
      assert.ok(devs.every((d) => deliver(d) === 0), "no ACK before the controller has the readings");
      // The workers' queues, as they answer the report's request; each device's signal, whichever worker has it.
      const r = await until("the workers' queues and sessions in the report", () => {
        const x = report(gw);
        return x.readings === devs.length && x.signals.length === devs.length ? x : undefined;
      });
      assert.equal(r.sessions, devs.length);
      assert.deepEqual(r.signals.map((x) => `${x.device} ${x.rssi}`).sort(), devs.map((d, i) => `${hex(d.kid)} ${-60 - i}`).sort());
      gw.client.emit("acked", gw.client.peer.out.end);
      const acks: number[] = [];
      await until("the ACKs", () => {
        for (const d of devs) {
          deliver(d);
          for (const m of epTakeInbox(d.ep)) if (messageKind(m) === MSG_ACK) for (let k = 0; k < ackCount(m); k++) acks.push(messageId(m, k));
        }
        return acks.length >= devs.length ? true : undefined;
      });
      assert.deepEqual(acks.sort(), devs.map((_, i) => 50 + i));
    } finally {
      await gw.close();
    }
  });

  it("takes commands to devices on both workers and tells the controller what became of each (queued, acked); reports the workers' key limits", async () => {
    const { gw, devs, deliver } = await threadedWorld();
    try {
      /** COMMAND_STATE events in the backbone queue since the last call: "device:id:state". */
      const states = (): string[] => {
        const out: string[] = [];
        for (const m of drained(gw)) {
          if (m.kind !== KIND_SESSION_EVENT) continue;
          const n = readSessionEvent(m);
          if (typeof n !== "string" && n.event === "command") out.push(`${n.device}:${n.id}:${n.state}`);
        }
        return out;
      };
      // A device is known to the gateway from its first record: each sends a reading first.
      devs.forEach((d, i) => {
        sessionSend(d.ep.session!, encodeData(60 + i, Buffer.from("first")), Date.now());
        for (const o of epTakeOutput(d.ep)) gw.input(d.link, o.bytes);
      });
      let readings = 0;
      await until("the readings in the backbone queue", () => ((readings += queued(gw).length) >= devs.length ? true : undefined));
      // The workers count their sessions at each poll (the gateway's timer), not at every batch.
      gw.devices!.poll(Date.now());
      await until("the sessions counted", () => (gw.devices!.onlineCount() === devs.length ? true : undefined));
      devs.forEach((d, i) => gw.client.emit("message", { kind: KIND_DOWNLINK, device: Buffer.from(d.kid), payload: Buffer.from([0, 1, 0x20 + i, 0x02, i]) }));
      const seen: string[] = [];
      await until("the commands queued", () => (seen.push(...states()), seen.length >= devs.length ? true : undefined));
      assert.deepEqual(seen.sort(), devs.map((d, i) => `${hex(d.kid)}:${0x120 + i}:queued`).sort());
      // Each device gets its command as a DATA message under the controller's id, and acknowledges it.
      const got: string[] = [];
      await until("the commands at the devices", () => {
        devs.forEach((d, i) => {
          deliver(d);
          for (const m of epTakeInbox(d.ep)) {
            if (messageKind(m) !== MSG_DATA) continue;
            got.push(`${i}:${messageId(m, 0)}:${hex(dataBody(m))}`);
            sessionSend(d.ep.session!, encodeAck([messageId(m, 0)]), Date.now());
            for (const o of epTakeOutput(d.ep)) gw.input(d.link, o.bytes);
          }
        });
        return got.length >= devs.length ? true : undefined;
      });
      assert.deepEqual(got.sort(), devs.map((_, i) => `${i}:${0x120 + i}:02${hex(Uint8Array.of(i))}`).sort());
      const acked: string[] = [];
      await until("the acknowledgements told", () => (acked.push(...states()), acked.length >= devs.length ? true : undefined));
      assert.deepEqual(acked.sort(), devs.map((d, i) => `${hex(d.kid)}:${0x120 + i}:acked`).sort());
      // Key limits: the workers answer the scrape before; a record sealed and a forgery on each worker show.
      for (const d of devs) {
        sessionSend(d.ep.session!, encodeData(90, Buffer.from("x")), Date.now());
        for (const o of epTakeOutput(d.ep)) {
          const bad = Uint8Array.from(o.bytes);
          bad[bad.length - 1] ^= 1;
          gw.input(d.link, bad);
        }
      }
      const limits = gw.devices!.keyLimits();
      assert.deepEqual(limits, { records: 0, forgeries: 0 }, "the first scrape asks; the workers have not answered yet");
      const later = await until("the workers' key limits", () => {
        const l = gw.devices!.keyLimits();
        gw.devices!.poll(Date.now()); // the gateway's timer does this once started: the sessions' sample
        return l.records > 0 && l.forgeries > 0 ? l : undefined;
      });
      assert.ok(later.records > 0 && later.forgeries > 0);
    } finally {
      await gw.close();
    }
  });
});
