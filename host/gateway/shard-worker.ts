// One worker of DeviceShards (./shards.ts): a DeviceGateway for the sessions whose SPI is its own (spi %
// count === index), with its own key table (the controller's grants, forwarded) and its own session handoff,
// answering each batch from the main thread with the packets for the links, the readings taken in, what its
// observer saw, and its handoff's messages for the controller.
import { parentPort, workerData } from "node:worker_threads";
import type { KeyPair } from "../../firmware/crypto/provider";
import { memoryStorage } from "../../firmware/runtime/facade";
import type { SaPolicy } from "../../firmware/session/sa";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import type { Handoff } from "../backbone/frame";
import type { CommandState } from "../backbone/session-event";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import { hostCodec } from "../record/gpcomp";
import { applyDeviceGrant, DeviceRef, RESPONDER_GRANT, responderGrant } from "./device-side";
import { DeviceGateway, DeviceState } from "./devices";
import { KeyTable } from "./keytable";
import type { DeviceObserver } from "./observer";
import { SessionHandoff } from "./session-handoff";
import { FromShard, ObserverCall, Packer, ToShard } from "./shards";

const { index, count } = workerData as { index: number; count: number };
const port = parentPort!;

const keys = new KeyTable();
// Its sessions handed to the controller as on one thread; what the handoff sends goes out with the next answer.
let controller: Handoff[] = [];
let problems: string[] = [];
const handoff = new SessionHandoff((m) => (controller.push(m as Handoff), true));
let responder: KeyPair = nodeKeyPair(); // replaced by the controller's grant, as on one thread
const policy: SaPolicy = {
  suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000,
  seqBlock: 1024, store: handoff.storage, codec: hostCodec, compress: false,
};
let calls: ObserverCall[] = [];
const observer: DeviceObserver = {
  handshake: (...a) => void calls.push(["handshake", ...a]),
  session: (...a) => void calls.push(["session", ...a]),
  authFailure: (...a) => void calls.push(["authFailure", ...a]),
  keyRecords: (...a) => void calls.push(["keyRecords", ...a]),
};
// Sessions made here take SPIs of this worker's class only, so the main thread finds them by SPI. (Made
// again only when the responder's key changes, so endpoints share them.)
const others = (spi: number) => spi % count !== index;
const configsFor = (me: KeyPair) => {
  const of = keys.responders(me, policy);
  return { me, dh: { ...of("dh"), spiLive: others }, psk: { ...of("psk"), spiLive: others } };
};
let configs = configsFor(responder);
const config = (mode: "dh" | "psk") => {
  if (configs.me !== responder) configs = configsFor(responder);
  return configs[mode];
};
const devices = new DeviceGateway({ config, storage: memoryStorage(), observer, holdAcks: true, handoff });
let commands: [string, number, CommandState][] = [];
devices.onCommand = (device, id, state) => void commands.push([device, id, state]);
let limits: FromShard["limits"];
let queues: FromShard["queues"];

// Devices by slot (what readings name them by on the main thread), and the slot of each.
const bySlot: DeviceState[] = [];
const slots = new WeakMap<DeviceRef, number>();
let named: [number, string][] = [];
const readings = { slots: [] as number[], ids: [] as number[], ats: [] as number[], bodies: new Packer() };

devices.onUplink = (d, id, body, off, len, at) => {
  let slot = slots.get(d);
  if (slot === undefined) {
    slot = bySlot.length;
    bySlot.push(d as DeviceState);
    slots.set(d, slot);
    named.push([slot, d.name]);
  }
  readings.slots.push(slot);
  readings.ids.push(id);
  readings.ats.push(at);
  readings.bodies.push(body, off, len);
  return true;
};

const out = new Packer();

/** What this message made: packets, readings, names, observer calls, evolved keys (the parts not empty). */
function answer(online: number | undefined): void {
  const links: string[] = [];
  for (const o of devices.takeOutput()) {
    links.push(o.link);
    out.push(o.bytes);
  }
  const r = readings.ids.length === 0 ? undefined : {
    slots: Int32Array.from(readings.slots), ids: Int32Array.from(readings.ids), ats: Float64Array.from(readings.ats), bodies: readings.bodies.take(),
  };
  readings.slots = [];
  readings.ids = [];
  readings.ats = [];
  const evolved = keys.takeEvolved();
  if (links.length === 0 && r === undefined && named.length === 0 && calls.length === 0 && commands.length === 0 && evolved.length === 0 &&
    controller.length === 0 && problems.length === 0 && limits === undefined && queues === undefined && online === undefined) return;
  const packets = out.takeAny();
  const m: FromShard = {
    links, packets, readings: r, named: some(named), calls: some(calls), evolved: some(evolved.map((e) => ({ device: e.device, text: e.text }))), online,
    commands: some(commands), controller: some(controller), problems: some(problems), limits, queues,
  };
  controller = [];
  problems = [];
  named = [];
  calls = [];
  commands = [];
  limits = undefined;
  queues = undefined;
  const moved: ArrayBuffer[] = [];
  if (packets !== undefined) moved.push(packets.data.buffer as ArrayBuffer);
  if (r !== undefined) moved.push(r.bodies.data.buffer as ArrayBuffer);
  port.postMessage(m, moved);
}

function some<T>(xs: T[]): T[] | undefined {
  return xs.length === 0 ? undefined : xs;
}

port.on("message", (m: ToShard) => {
  let online: number | undefined;
  switch (m.t) {
    case "batch": {
      const { release, confirm, packets } = m;
      if (release !== undefined) for (let i = 0; i < release.slots.length; i++) devices.release(bySlot[release.slots[i]].name, release.ids[i]);
      if (packets !== undefined) {
        const { data, ends } = packets;
        for (let i = 0; i < m.links.length; i++) devices.input(m.links[i], data.subarray(i === 0 ? 0 : ends[i - 1], ends[i]), m.now);
      }
      if (confirm !== undefined) for (let i = 0; i < confirm.slots.length; i++) devices.confirmOf(bySlot[confirm.slots[i]], confirm.ids[i], m.now);
      break;
    }
    case "connected":
      devices.connected(m.link, m.now);
      break;
    case "poll":
      devices.poll(m.now);
      online = devices.onlineCount();
      break;
    case "command":
      devices.command(m.device, m.body, m.now, m.id);
      break;
    case "answer": {
      const problem = handoff.answer(m.answer, m.now);
      if (problem) problems.push(problem);
      break;
    }
    case "limits":
      limits = devices.keyLimits();
      break;
    case "queues":
      queues = devices.queues();
      break;
    case "end":
      devices.end(m.device, m.now);
      break;
    case "grant":
      if (m.device === RESPONDER_GRANT) responder = responderGrant(m.grant) ?? responder;
      else applyDeviceGrant(keys, devices, m.device, m.grant, Date.now());
      break;
  }
  answer(online);
});
