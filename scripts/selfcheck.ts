// `npm start` until the gateway exists: build every artefact, then run every vector file on every target
// and show the result as a table. Exit code 0 only if nothing failed.
import * as fs from "node:fs";
import * as path from "node:path";
import { buildAll, BuildError, REPO_ROOT } from "./build";
import { progress, table } from "./lib/measure";
import { espruinoBinary, runEspruinoNativeDetailed } from "../host/sim/espruino-native";
import { INT32_X25519_GUARD, loadTargets, PROBE_INIT, loadVectorFiles, pad, pendingReason, runCase, runsOn, Target, TARGETS } from "../host/sim/vectors";

async function main(): Promise<number> {
  console.log("sesame self-check: every test vector on every target\n");
  try {
    const { artefacts } = await buildAll({ quiet: true });
    console.log(`built ${artefacts.length} artefacts in dist/ (npm run build shows their sizes)`);
  } catch (e) {
    console.error(e instanceof BuildError ? e.message : String(e));
    return 1;
  }
  const read = (a: string) => fs.readFileSync(path.join(REPO_ROOT, "dist", a), "utf8");
  const { runners, unavailable, close } = await loadTargets(read);
  const files = loadVectorFiles().filter((f) => f.data);
  const bin = espruinoBinary();
  const targets = TARGETS.filter((t) => t !== "espruino-native" || bin);
  const rows: string[][] = [];
  const totals = new Map<Target, { pass: number; fail: number; skip: number }>(targets.map((t) => [t, { pass: 0, fail: 0, skip: 0 }]));
  const failures: string[] = [];
  let done = 0;
  const total = files.length * targets.length;
  for (const { file, data } of files) {
    const row = [file.replace(/\.json$/, "")];
    for (const t of targets) {
      progress(`${file} on ${t}`, done++, total);
      const cases = data!.cases.filter((c) => runsOn(c, t));
      const tally = totals.get(t)!;
      let pass = 0, fail = 0, skip = 0;
      let results: string[];
      if (t === "espruino-native") {
        const r = await runEspruinoNativeDetailed(read("espruino/probe.js"), cases.map((c) => [c.op!, pad(c.args)]), { prelude: PROBE_INIT });
        results = r.map((x) => (x.ok ? x.value : `THROWS ${x.error}`));
      } else {
        const run = runners.get(t);
        results = cases.map((c) => (run ? runCase(run, c) : `THROWS ${unavailable.get(t)}`));
      }
      cases.forEach((c, i) => {
        const got = results[i];
        if (pendingReason(c, t) || (t === "fengari" && got !== c.out && INT32_X25519_GUARD.test(got))) skip++;
        else if (got === c.out) pass++;
        else {
          fail++;
          failures.push(`${file} / ${t}: ${c.name}: got ${got.slice(0, 60)}`);
        }
      });
      tally.pass += pass;
      tally.fail += fail;
      tally.skip += skip;
      row.push(cases.length === 0 ? "-" : `${pass}/${cases.length}${fail ? ` (${fail} FAIL)` : ""}${skip ? ` (${skip} n/a)` : ""}`);
    }
    rows.push(row);
  }
  progress("done", total, total);
  close();
  rows.push(["total", ...targets.map((t) => { const x = totals.get(t)!; return `${x.pass} passed${x.fail ? `, ${x.fail} FAILED` : ""}`; })]);
  console.log("\n" + table(["vectors", ...targets], rows));
  console.log(`\nn/a: X25519 on 32-bit Lua (fengari), where boards use their native sodium instead (tested with the board bundles).`);
  console.log("gcm: the backbone AEAD runs on hosts only (node:crypto; test/host/crypto/aead.test.ts runs these vectors).");
  if (!bin) console.log("espruino-native: set ESPRUINO_BIN to an Espruino interpreter build to run the vectors there too.");
  for (const f of failures.slice(0, 20)) console.log("FAIL " + f);
  const failed = [...totals.values()].reduce((n, x) => n + x.fail, 0);
  console.log(failed === 0 ? "\nall vectors pass on every target" : `\n${failed} vector(s) FAILED`);
  return failed === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  process.exit(1);
});
