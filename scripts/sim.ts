// `npm run sim -- --boards 50 --link lora --loss 0.1`: a fleet of simulated boards running the built
// bundles against the real gateway, in virtual time. Shows a live line while it runs, then a table per board
// type and an SVG chart of latency and air time (sim-report/sim.svg, or --out).
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { BoardResult, LinkChoice, runFleet } from "../host/sim/fleet";
import { buildAll, isBuildStale, REPO_ROOT } from "./build";
import { fleetChart } from "./lib/sim-chart";

const USAGE = `usage: npm run sim -- [--boards N] [--link ble|lora|mixed] [--loss 0..1] [--minutes M] [--seed S] [--status S] [--out DIR] [--lua wasmoon|fengari]
  --boards   number of boards, profiles taken in turn (default 20)
  --link     radios in use (default mixed: BLE and LoRa)
  --loss     probability that a frame or PDU is lost on the air (default 0.1)
  --minutes  virtual minutes to run (default 30)
  --seed     seed of the run's radio schedule (default 1)
  --status   seconds between status messages (12 temperatures as text, which GPComp shrinks) each board
             sends besides its readings (default: none)
  --out      where to write sim.svg and sim.json (default sim-report/)
  --lua      Lua engine for NodeMCU boards: wasmoon (64-bit integers) or fengari (32-bit) (default wasmoon)`;

function fail(msg: string): never {
  console.error(`sim: ${msg}\n${USAGE}`);
  process.exit(2);
}

function number(v: string | undefined, name: string, dflt: number, ok: (n: number) => boolean, what: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) fail(`--${name} ${JSON.stringify(v)}: must be ${what}`);
  return n;
}

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] : NaN);

export function summaryTable(results: BoardResult[]): string {
  const byProfile = new Map<string, BoardResult[]>();
  for (const r of results) byProfile.set(r.profile, [...(byProfile.get(r.profile) ?? []), r]);
  const rows = [["board type", "boards", "handshakes", "readings", "delivered", "duplicates", "lost", "in flight", "air time s", "max frame B", "memory peak / budget", "latency p50/p99 s", "gpcomp records / saved B", "failed"]];
  for (const [profile, rs] of [...byProfile].sort()) {
    const sum = (f: (r: BoardResult) => number) => rs.reduce((a, r) => a + f(r), 0);
    const lat = rs.flatMap((r) => r.latencies);
    const peak = Math.max(...rs.map((r) => r.memPeak));
    rows.push([
      profile, String(rs.length), String(sum((r) => r.handshakes)), String(sum((r) => r.queued)), String(sum((r) => r.delivered)),
      String(sum((r) => r.appDuplicates)), `${sum((r) => r.lost)}${sum((r) => r.lostButDelivered) ? ` (${sum((r) => r.lostButDelivered)} delivered)` : ""}`,
      String(sum((r) => r.inFlight)), (sum((r) => r.airtimeMs) / 1000).toFixed(1), String(Math.max(...rs.map((r) => r.maxFrame))),
      `${peak} / ${rs[0].memBudget} ${rs[0].memUnit}`, `${(median(lat) / 1000).toFixed(2)} / ${(pct(lat, 0.99) / 1000).toFixed(2)}`,
      `${sum((r) => r.compressed)} / ${sum((r) => r.savedBytes)}`, String(rs.filter((r) => r.failed).length),
    ]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => "| " + r.map((c, i) => c.padEnd(w[i])).join(" | ") + " |";
  return [fmt(rows[0]), "|" + w.map((n) => "-".repeat(n + 2)).join("|") + "|", ...rows.slice(1).map(fmt)].join("\n");
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        boards: { type: "string" }, link: { type: "string" }, loss: { type: "string" }, minutes: { type: "string" }, seed: { type: "string" },
        out: { type: "string" }, lua: { type: "string" }, status: { type: "string" }, help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    fail((e as Error).message);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const boards = number(args.boards, "boards", 20, (n) => Number.isInteger(n) && n >= 1 && n <= 500, "a whole number from 1 to 500");
  const loss = number(args.loss, "loss", 0.1, (n) => n >= 0 && n < 1, "a probability from 0 up to (not including) 1");
  const minutes = number(args.minutes, "minutes", 30, (n) => n > 0 && n <= 24 * 60, "from 0 to 1440 minutes");
  const seed = number(args.seed, "seed", 1, Number.isInteger, "a whole number");
  const status = number(args.status, "status", 0, (n) => n >= 0 && n <= 86_400, "from 0 (none) to 86400 seconds");
  const link = (args.link ?? "mixed") as LinkChoice;
  if (!["ble", "lora", "mixed"].includes(link)) fail(`--link ${JSON.stringify(args.link)}: must be ble, lora or mixed`);
  const lua = (args.lua ?? "wasmoon") as "wasmoon" | "fengari";
  if (!["wasmoon", "fengari"].includes(lua)) fail(`--lua ${JSON.stringify(args.lua)}: must be wasmoon or fengari`);
  const out = path.resolve(args.out ?? path.join(REPO_ROOT, "sim-report"));

  if (isBuildStale()) {
    process.stderr.write("building the board bundles...\n");
    await buildAll({ quiet: true });
  }
  const t0 = Date.now();
  const { results, fleet } = await runFleet({
    boards, link, loss, minutes, seed, luaEngine: lua, statusEvery: status > 0 ? status : undefined,
    onProgress: (now, end, f) => {
      const done = now / end;
      const bar = "#".repeat(Math.round(done * 30)).padEnd(30, ".");
      const online = f.gateway?.online().length ?? 0;
      process.stderr.write(`\r[${bar}] ${(now / 60000).toFixed(1)}/${end / 60000} min virtual, ${((Date.now() - t0) / 1000).toFixed(1)} s real, ${online}/${boards} online, ${f.uplinks.length} readings delivered `);
    },
  });
  process.stderr.write("\n");
  console.log(`\n${boards} boards, link ${link}, loss ${loss}, ${minutes} virtual minutes in ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${seed})\n`);
  console.log(summaryTable(results));
  const failed = results.filter((r) => r.failed);
  for (const r of failed) console.log(`${r.name}: ${r.failed}`);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, "sim.svg"), fleetChart(results, fleet.lora?.log ?? [], minutes));
  fs.writeFileSync(path.join(out, "sim.json"), JSON.stringify({ boards, link, loss, minutes, seed, results }, null, 1));
  console.log(`\nchart: ${path.relative(process.cwd(), path.join(out, "sim.svg"))}   data: ${path.relative(process.cwd(), path.join(out, "sim.json"))}`);
}

main().catch((e: unknown) => {
  console.error(`sim failed: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
