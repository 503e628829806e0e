// The failure drill of issue 12 at full size (`npm run bench cluster`): 2 controllers, 2 gateways, Postgres
// and Mosquitto as real processes, 200 boards (SESAME_DRILL_BOARDS) each sending a reading every second
// (SESAME_DRILL_PERIOD_MS), and kill -9 of every process in turn under that load (test/harness/failure-drill.ts
// does the work; test/host/cluster-drill.test.ts runs a short form with assertions). Progress on stderr.
import { drillTable, failureDrill } from "../../test/harness/failure-drill";

const BOARDS = Number(process.env.SESAME_DRILL_BOARDS ?? 200);
const PERIOD_MS = Number(process.env.SESAME_DRILL_PERIOD_MS ?? 1000);

export async function benchClusterDrill(): Promise<string> {
  const started = Date.now();
  const f = await failureDrill({
    boards: BOARDS, periodMs: PERIOD_MS, quietMs: 5000,
    kills: ["controller0", "gateway0", "controller1", "gateway1", "postgres"],
    progress: (line) => console.error(`  [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`),
  });
  return drillTable(f);
}
