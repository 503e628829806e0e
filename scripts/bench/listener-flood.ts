// The controller's backbone listener under a flood of silent TCP connections (issue 10 measured about 86 a
// second holding all 64 handshake slots): a gateway that was connected restarts while the flood runs, and
// the time until its fresh client is OPEN is measured, next to the same restart without a flood. Floods
// come from another loopback address (127.0.0.2: another host), from 32 of them, and from the gateway's own
// address. The flood runs in a child process (an attacker's own CPU); controller and gateway share this one.
import { backboneKeyPair } from "../../host/backbone/handshake";
import { BACKBONE_ADMISSION, BackboneClient, BackboneServer, CLIENT_OPEN } from "../../host/backbone/link";
import { silentFloodProcess } from "../lib/flood";
import { median, progress, table } from "../lib/measure";

const ROUNDS = 5;
const GIVE_UP_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Scenario = { name: string; from: string[]; perSecond: number };

async function restartUnder(s: Scenario): Promise<{ ms: number; cpu: number; evicted: number; refused: number; silent: number }> {
  const ctl = backboneKeyPair(), gw = backboneKeyPair(), kid = Buffer.from("0a0b0c0d", "hex");
  const server = new BackboneServer({ keys: ctl, gateways: (k) => (Buffer.from(k).equals(kid) ? gw.S : undefined) });
  const { port } = await server.listen(0);
  const gateway = () => new BackboneClient({ host: "127.0.0.1", port, identity: { kid, keys: gw }, controllerKey: ctl.S }).start();
  const first = gateway();
  while (first.state !== CLIENT_OPEN) await sleep(5);
  const flood = s.perSecond > 0 ? silentFloodProcess({ port, from: s.from, perSecond: s.perSecond, maxMs: GIVE_UP_MS + 5_000 }) : undefined;
  const cpu0 = process.cpuUsage(), t0 = performance.now();
  await sleep(1500); // the child starts, and the flood fills what it can
  const used = process.cpuUsage(cpu0), cpu = (used.user + used.system) / 10 / (performance.now() - t0);
  await first.close();
  const started = performance.now();
  const again = gateway();
  while (again.state !== CLIENT_OPEN && performance.now() - started < GIVE_UP_MS) await sleep(1);
  const ms = again.state === CLIENT_OPEN ? performance.now() - started : Infinity;
  await flood?.stop();
  await again.close();
  const { evicted, refused, silent } = server.stats;
  await server.close();
  return { ms, cpu, evicted, refused, silent };
}

export async function benchListenerFlood(): Promise<string> {
  const others = Array.from({ length: 32 }, (_, i) => `127.0.1.${i + 1}`);
  const scenarios: Scenario[] = [
    { name: "no flood", from: [], perSecond: 0 },
    { name: "127.0.0.2, 86/s (the issue's rate)", from: ["127.0.0.2"], perSecond: 86 },
    { name: "127.0.0.2, 1000/s", from: ["127.0.0.2"], perSecond: 1000 },
    { name: "32 other addresses, 1000/s", from: others, perSecond: 1000 },
    { name: "the gateway's own address, 86/s", from: ["127.0.0.1"], perSecond: 86 },
    { name: "the gateway's own address, 1000/s", from: ["127.0.0.1"], perSecond: 1000 },
  ];
  const rows: (string | number)[][] = [];
  let done = 0;
  for (const s of scenarios) {
    const runs: Awaited<ReturnType<typeof restartUnder>>[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      progress("listener flood", done++, scenarios.length * ROUNDS);
      runs.push(await restartUnder(s));
    }
    const ms = median(runs.map((x) => x.ms));
    const per = (k: "evicted" | "refused" | "silent") => Math.round(median(runs.map((x) => x[k])));
    rows.push([
      s.name, Number.isFinite(ms) ? ms.toFixed(1) : `> ${GIVE_UP_MS / 1000} s`, runs.filter((x) => Number.isFinite(x.ms)).length + `/${ROUNDS}`,
      median(runs.map((x) => x.cpu)).toFixed(0), per("evicted"), per("refused"), per("silent"),
    ]);
  }
  progress("listener flood", 1, 1);
  const a = BACKBONE_ADMISSION;
  return table(["silent flood from", "restarted gateway OPEN after (ms, median)", "got in", "controller CPU % during flood", "evicted", "refused", "silent (dropped)"], rows) +
    `\nLimits: ${a.maxPending} half-open connections, ${a.perSource} per source, silent ones dropped after ${a.silentMs / 1000} s; a newcomer evicts the oldest silent one. ` +
    `Counts are per round (about a second of flood, then the restart). On main, a 86/s flood from anywhere kept the restarted gateway off for the whole flood.`;
}
