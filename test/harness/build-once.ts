// Builds dist/ at most once per test run, and only when it is missing or older than its sources, so that
// `npx mocha` works on its own (`npm test` builds first anyway). A failed build is reported, not thrown:
// the tests that need an artefact fail with its message, the others still run.
import * as fs from "node:fs";
import * as path from "node:path";
import { buildAll, isBuildStale, REPO_ROOT } from "../../scripts/build";

export const DIST = path.join(REPO_ROOT, "dist");

let pending: Promise<{ error?: string }> | undefined;

export function ensureBuilt(): Promise<{ error?: string }> {
  pending ??= (async () => {
    if (!isBuildStale(REPO_ROOT, DIST)) return {};
    try {
      await buildAll({ quiet: true });
      return {};
    } catch (e) {
      return { error: (e as Error).message };
    }
  })();
  return pending;
}

/** The text of an artefact under dist/, or an error naming why it is missing. */
export function readArtefact(relative: string, buildError?: string): string {
  const file = path.join(DIST, relative);
  if (!fs.existsSync(file))
    throw new Error(`dist/${relative} is missing${buildError ? ` (the build failed: ${buildError.split("\n").slice(1, 3).join(" / ")} ...)` : ""}`);
  return fs.readFileSync(file, "utf8");
}
