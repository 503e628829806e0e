// The failure drill of issue 12 with real processes: two `sesame controller`s on one real Postgres and one
// real Mosquitto, two terminate gateways that know both, a fleet of boards running the device runtime in this
// process (./ble-board.ts), half on each gateway, each sending a reading every `periodMs`; an application
// subscribed to the readings. Under that load it kills (SIGKILL) one process at a time and brings it back
// as a supervisor would: a controller after every board delivers again (its gateways stay on the other), a
// gateway at once (its boards, having lost their BLE central, connect to the other gateway and resume their
// sessions there: docs/PROTOCOL.md 3.8), Postgres after 3 s (longer than a lease: every heartbeat is stale when it is back). What it measures (the test asserts the counts, `npm run bench cluster`
// prints the times):
//   - missing: readings a board saw acknowledged that never reached the application (goal 0);
//   - duplicates: readings the application got more than once (goal 0);
//   - per kill, the seconds until every board had a reading sent after the kill acknowledged;
//   - readings per second at the application over the run, and readings the boards gave up (reported lost
//     to them, never silently).
import mqtt from "mqtt";
import { BleBoard, radio } from "./ble-board";
import { startCluster, type Cluster } from "./cluster";
import { Mosquitto } from "./mosquitto";
import { startPostgres, type TestPostgres } from "./postgres";
import { until } from "./until";

export type DrillKill = "controller0" | "controller1" | "gateway0" | "gateway1" | "postgres";

export type DrillOptions = {
  boards: number;
  kills: DrillKill[];
  /** Each board sends a reading this often (ms), staggered. */
  periodMs: number;
  /** How long to wait for every board to deliver again after a kill before moving on (a bound, not a goal). */
  recoverCapMs?: number;
  /** Load before the first kill and after each recovery (ms). */
  quietMs?: number;
  progress?: (line: string) => void;
};

export type KillFigure = {
  what: DrillKill;
  /** Seconds from the kill until the last board delivered again; undefined if some never did within the cap. */
  recoverySeconds: number | undefined;
  /** Median over the boards of the same. */
  medianSeconds: number | undefined;
  notRecovered: number;
  /** Readings the boards gave up between this kill and the next (reported to them as lost). */
  givenUp: number;
  /** Readings the application got a second time between this kill and the next. */
  duplicates: number;
};

export type DrillFigures = {
  boards: number;
  seconds: number;
  sent: number;
  acknowledged: number;
  published: number;
  missing: number;
  duplicates: number;
  givenUp: number;
  perSecond: number;
  kills: KillFigure[];
};

/** Short timeouts (as cluster.test.ts uses), so a board notices a gateway that lost its session within seconds. */
const FAST = ";rto=400;tries=3;retry=1000";
const LEASE_MS = 1500;
/** How long Postgres stays down after its kill -9. */
export const POSTGRES_DOWN_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Member = { b: BleBoard; id: string; gateway: number; nextAt: number };

export async function failureDrill(o: DrillOptions): Promise<DrillFigures> {
  const say = o.progress ?? (() => {});
  const capMs = o.recoverCapMs ?? 60_000, quietMs = o.quietMs ?? 3000;
  let pgServer: TestPostgres | undefined, broker: Mosquitto | undefined, c: Cluster | undefined, app: mqtt.MqttClient | undefined;
  const fleet: Member[] = [];
  let stopRadio = () => {};
  let loading = false;
  try {
    pgServer = await startPostgres();
    broker = await Mosquitto.start();
    const dbUrl = await pgServer.createDatabase("drill");
    c = await startCluster({
      dbUrl, mqttUrl: broker.url, controllers: 2,
      gateways: [{ mode: "terminate", order: [0, 1] }, { mode: "terminate", order: [1, 0] }],
      controllerArgs: ["--lease-ms", String(LEASE_MS)],
    });
    const cluster = c;
    // The application: every reading it gets, by device, counted.
    const got = new Map<string, Map<number, number>>();
    let published = 0, twice = 0;
    app = await mqtt.connectAsync(broker.url, { clean: true });
    app.on("message", (topic, body) => {
      const device = topic.split("/")[2];
      const seq = (JSON.parse(body.toString()) as { seq: number }).seq;
      const m = got.get(device) ?? new Map<number, number>();
      got.set(device, m);
      if (m.has(seq)) twice++;
      m.set(seq, (m.get(seq) ?? 0) + 1);
      published++;
    });
    await app.subscribeAsync("sesame/devices/+/up", { qos: 1 });

    say(`provisioning ${o.boards} boards`);
    const boards: BleBoard[] = [];
    stopRadio = radio(cluster.gateways.map((g) => g.sim), boards);
    for (let i = 0; i < o.boards; i++) {
      const p = await cluster.provision("puckjs", i % 2);
      const b = new BleBoard(p.id.slice(0, 8), p.config + FAST);
      boards.push(b);
      fleet.push({ b, id: p.id, gateway: i % 2, nextAt: Date.now() + Math.random() * o.periodMs });
    }
    await until(() => cluster.gateways.every((g) => g.sim.attached), "the simulator links");
    for (const m of fleet) m.b.attach(cluster.gateways[m.gateway].sim);

    // The load: a reading per board per period, while the runtime's queue has room.
    loading = true;
    const load = (async () => {
      while (loading) {
        const now = Date.now();
        for (const m of fleet) {
          if (now < m.nextAt) continue;
          m.nextAt = now + o.periodMs;
          if (m.b.rt.sender.pending.length < 8) m.b.send(Buffer.from(`r${now}`));
        }
        await sleep(20);
      }
    })();
    const since = (mark: number[]) => fleet.map((m, i) => m.b.sent.slice(mark[i]));
    const delivered = (m: Member, ids: number[]) => {
      if (ids.length === 0) return false;
      const open = new Set([...m.b.rt.sender.pending.map((x) => x.id), ...m.b.lost]);
      return ids.some((id) => !open.has(id));
    };
    const givenUp = () => fleet.reduce((n, m) => n + m.b.lost.length, 0);
    const mark0 = fleet.map((m) => m.b.sent.length);
    await until(() => since(mark0).every((ids, i) => delivered(fleet[i], ids)), "a first reading from every board", 120_000);
    say(`every board delivers; load ${Math.round((1000 * o.boards) / o.periodMs)} readings/s offered`);
    const started = Date.now(), publishedAtStart = published;
    await sleep(quietMs);

    const kills: KillFigure[] = [];
    for (const what of o.kills) {
      const lostBefore = givenUp(), twiceBefore = twice;
      const mark = fleet.map((m) => m.b.sent.length);
      const at = Date.now();
      // A gateway's boards lose their central and connect to the other one, sessions and all.
      const moveOff = (g: number) => {
        for (const m of fleet) {
          if (m.gateway !== g) continue;
          m.gateway = 1 - g;
          m.b.attach(cluster.gateways[m.gateway].sim);
        }
      };
      const back = await kill(cluster, pgServer, what, moveOff);
      const recovered = new Array<number | undefined>(fleet.length).fill(undefined);
      while (Date.now() - at < capMs && recovered.some((r) => r === undefined)) {
        const ids = since(mark);
        fleet.forEach((m, i) => {
          if (recovered[i] === undefined && delivered(m, ids[i])) recovered[i] = (Date.now() - at) / 1000;
        });
        await sleep(100);
      }
      await back();
      const done = recovered.filter((r): r is number => r !== undefined).sort((a, b) => a - b);
      const figure: KillFigure = {
        what, notRecovered: fleet.length - done.length, givenUp: 0, duplicates: 0,
        recoverySeconds: done.length === fleet.length ? done[done.length - 1] : undefined,
        medianSeconds: done.length > 0 ? done[Math.floor(done.length / 2)] : undefined,
      };
      await sleep(quietMs);
      figure.givenUp = givenUp() - lostBefore;
      figure.duplicates = twice - twiceBefore;
      kills.push(figure);
      say(`kill -9 ${what}: every board delivers again after ${figure.recoverySeconds?.toFixed(1) ?? `(not ${figure.notRecovered} of them)`} s, median ${figure.medianSeconds?.toFixed(1) ?? "-"} s; ${figure.givenUp} readings given up, ${figure.duplicates} delivered twice`);
    }

    loading = false;
    await load;
    const seconds = (Date.now() - started) / 1000;
    const perSecond = (published - publishedAtStart) / seconds;
    say("load stopped; waiting for the boards to settle and for claims left behind to be taken over");
    await until(() => fleet.every((m) => m.b.rt.sender.pending.length === 0), "every board's readings acknowledged or given up", 120_000);
    await sleep(LEASE_MS + 3000);

    let sent = 0, acknowledged = 0, missing = 0, duplicates = 0;
    for (const m of fleet) {
      const seen = got.get(m.id) ?? new Map<number, number>();
      const acked = m.b.acknowledged();
      sent += m.b.sent.length;
      acknowledged += acked.length;
      missing += acked.filter((id) => !seen.has(id)).length;
      for (const n of seen.values()) duplicates += n - 1;
    }
    return { boards: o.boards, seconds, sent, acknowledged, published, missing, duplicates, givenUp: givenUp(), perSecond, kills };
  } finally {
    loading = false;
    stopRadio();
    for (const m of fleet) m.b.stop();
    await app?.endAsync().catch(() => {});
    await c?.close().catch(() => {});
    await broker?.dispose().catch(() => {});
    await pgServer?.stop().catch(() => {});
  }
}

/** kill -9 of one process; answers what brings it back once the fleet recovered (a gateway and Postgres are back at once, as their supervisor would have them). */
async function kill(c: Cluster, pgServer: TestPostgres, what: DrillKill, moveOff: (gateway: number) => void): Promise<() => Promise<void>> {
  const done = async () => {};
  if (what === "postgres") {
    // Down for longer than a lease: every controller's heartbeat is stale when it is back.
    await pgServer.kill();
    await sleep(POSTGRES_DOWN_MS);
    await pgServer.restart();
    return done;
  }
  const p = what.startsWith("controller") ? c.controllers[Number(what.slice(-1))] : c.gateways[Number(what.slice(-1))];
  await p.kill();
  if (what.startsWith("gateway")) {
    moveOff(Number(what.slice(-1)));
    await p.start();
    return done;
  }
  return async () => void (await p.start());
}

/** The figures as a table, for npm run bench. */
export function drillTable(f: DrillFigures): string {
  const s = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(1));
  const rows = f.kills.map((k) => `| kill -9 ${k.what} | ${k.recoverySeconds === undefined ? `not all (${k.notRecovered} never)` : s(k.recoverySeconds)} | ${s(k.medianSeconds)} | ${k.givenUp} | ${k.duplicates} | ${goal(k.what)} |`);
  return [
    `${f.boards} boards, ${f.seconds.toFixed(0)} s of load: ${f.sent} readings sent, ${f.acknowledged} acknowledged to the boards, ${f.published} at the application (${f.perSecond.toFixed(0)}/s), ${f.givenUp} given up (reported lost to the boards)`,
    `acknowledged and missing at the application: ${f.missing} (goal 0); delivered twice: ${f.duplicates} (goal 0)`,
    "",
    "| kill | every board delivers again (s) | median board (s) | readings given up | delivered twice | goal |",
    "|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

const goal = (what: DrillKill) => (what.startsWith("gateway") ? "< 5 s" : what.startsWith("controller") ? "< 10 s" : `- (down ${POSTGRES_DOWN_MS / 1000} s)`);
