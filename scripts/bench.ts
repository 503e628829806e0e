// `npm run bench`: the figures the issues ask for, each next to its peer measured in the same run.
// Medians of several rounds; ratios are the figures to compare across machines, not absolute times.
import { execFileSync, spawnSync } from "node:child_process";
import { allocatorEnv, allocatorOf } from "../host/cli/malloc";
import { benchRecords } from "./bench/records";
import { benchPortable } from "./bench/portable";
import { benchSizes } from "./bench/sizes";
import { benchHandshake } from "./bench/handshake";
import { benchFlood } from "./bench/flood";
import { benchListenerFlood } from "./bench/listener-flood";
import { benchBoards } from "./bench/boards";
import { benchBackbone } from "./bench/backbone";
import { benchBridge } from "./bench/bridge";
import { benchScaling } from "./bench/scaling";
import { benchOutbox } from "./bench/outbox";
import { benchLiveFeed } from "./bench/live-feed";
import { benchGrants } from "./bench/grants";
import { benchClusterDrill } from "./bench/cluster";

const sections: [string, () => string | Promise<string>][] = [
  ["Record seal/open on the host (ops/s; raw = one node:crypto call per record)", benchRecords],
  ["Portable primitives (time per operation)", benchPortable],
  ["Bundle sizes", benchSizes],
  ["Handshakes: bytes and host handshakes per second, next to TLS 1.3 on loopback", benchHandshake],
  ["Handshake flood at the gateway: work and memory", benchFlood],
  ["Silent-connection flood at the controller's backbone listener: a restarted gateway's time to OPEN", benchListenerFlood],
  ["Espruino boards on the interpreter: JsVars, handshake and record times", () => benchBoards()],
  ["Gateway bridge: device messages per second and added latency, terminate and relay modes, next to the raw CCM open floor", benchBridge],
  ["Gateway scaling: 100 to 100,000 devices, and the device side on two worker threads", benchScaling],
  ["Backbone bulk throughput: sesame extreme-format session next to TLS 1.3 on loopback (MB/s)", benchBackbone],
  ["Readings outbox: what storing each reading once costs, on PGlite and Postgres, and readings/s through a controller", benchOutbox],
  ["Live feed for the web console: cost per reading and of the fleet table", benchLiveFeed],
  ["Key grants to a connecting gateway: the controller's and the gateway's work, by fleet size", benchGrants],
  ["Cluster failure drill: kill -9 of each controller, gateway and Postgres under a 200-board load (real processes)", benchClusterDrill],
];

// The figures are those of the allocator `npm start` gives sesame's processes (glibc's malloc, or jemalloc
// with SESAME_MALLOC=jemalloc: host/cli/malloc.ts): the bench runs itself again on it, children and all.
const alloc = allocatorEnv(process.env);
if (alloc.allocator !== allocatorOf() && process.env.SESAME_BENCH_AGAIN === undefined) {
  const again = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit", env: { ...alloc.env, SESAME_BENCH_AGAIN: "1" } });
  process.exit(again.status ?? 1);
}

const only = process.argv.slice(2);
execFileSync(process.execPath, ["--import", "tsx", "scripts/build.ts", "--quiet"], { stdio: "inherit" });
console.log(`sesame bench — node ${process.version}, allocator ${alloc.note}, ${new Date().toISOString()}\n`);
for (const [title, run] of sections) {
  if (only.length && !only.some((o) => title.toLowerCase().includes(o.toLowerCase()))) continue;
  console.log(`## ${title}\n`);
  console.log(await run());
  console.log();
}
