// `npm run audit`: the application edge tried as an attacker on the same host would, against a fresh
// `sesame start` of this tree (issue 10's list). Prints one row per attempt: what was tried, what happened,
// and whether the door held. Takes about ten minutes; `npm run audit -- mqtt admin` runs the rows whose names
// contain those words; `npm run audit -- --cluster` tries the same against `sesame start --cluster`
// (Postgres, Mosquitto, two controllers, two gateways) and adds kill -9 of the broker and of Postgres.
import { anonymousCommand, anonymousSubscribe, retainedFake, retainedFlood, type Outcome } from "./audit/mqtt";
import { adminLockout, auditFlood, backboneFlood, fileModes, masterKeyRotation, readmeCurl, simIntruder, slowloris } from "./audit/doors";
import { killPart } from "./audit/processes";
import { Target } from "./audit/target";

const attempts: [string, (t: Target) => Promise<Outcome> | Outcome][] = [
  ["mqtt: anonymous subscribe to sesame/#", anonymousSubscribe],
  ["mqtt: anonymous command (reading period 5 s -> 1 s)", anonymousCommand],
  ["mqtt: retained fake reading on .../up", retainedFake],
  ["mqtt: retained 100 MB and 200 MB messages", retainedFlood],
  ["keys: master-key rotate {keyFile}, kill -9, restart", () => masterKeyRotation("keyFile")],
  ["keys: master-key rotate {generate: true}, kill -9, restart", () => masterKeyRotation("generate")],
  ["files: state directory modes under umask 000", fileModes],
  ["backbone: silent-connection flood while a gateway connects", (t) => backboneFlood(t, 500)],
  ["admin: bad token every 2 s, real token every 1 s, same address", adminLockout],
  ["admin: 10,000 refused requests, audit growth", auditFlood],
  ["simlink: an intruder on the simulator port", simIntruder],
  ["http: slowloris on the gateway's metrics port", (t) => slowloris(t.access.gatewayMetrics)],
  ["http: slowloris on the admin port", (t) => slowloris(t.access.admin)],
  ["readme: the provisioning curl as written", readmeCurl],
  ["processes: kill -9 of the gateway under npm start", (t) => killPart(t, "gateway")],
  ["processes: kill -9 of the controller under npm start", (t) => killPart(t, "controller")],
];
const clusterOnly: typeof attempts = [
  ["processes: kill -9 of Mosquitto under npm start --cluster", (t) => killPart(t, "mosquitto")],
  ["processes: kill -9 of Postgres under npm start --cluster", (t) => killPart(t, "postgres")],
];

const cluster = process.argv.includes("--cluster");
const only = process.argv.slice(2).filter((a) => a !== "--cluster");
const chosen = [...attempts, ...(cluster ? clusterOnly : [])].filter(([name]) => only.length === 0 || only.some((o) => name.includes(o)));
const t = new Target(cluster);
process.stderr.write(`starting sesame (npm start${cluster ? " --cluster" : ""}, 6 boards) under umask 000...\n`);
await t.start(6);
await new Promise((r) => setTimeout(r, 15_000)); // boards online, readings flowing
const rows: [string, string, string][] = [];
for (const [name, run] of chosen) {
  process.stderr.write(`  ${name} ...\n`);
  let o: Outcome;
  try {
    o = await run(t);
  } catch (e) {
    o = { result: `error: ${(e as Error).message}`, held: false };
  }
  rows.push([name, o.result, o.held ? "held" : "OPEN"]);
  process.stderr.write(`    ${o.held ? "held" : "OPEN"}: ${o.result}\n`);
}
await t.stop();
console.log("| attempt | what happened | door |\n|---|---|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
process.exit(0);
