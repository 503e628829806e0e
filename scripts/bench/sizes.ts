// Artefact sizes from dist/ (run `npm run build` first; bench does).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { table } from "../lib/measure";

export function benchSizes(): string {
  const rows: (string | number)[][] = [];
  for (const dir of ["dist/espruino", "dist/lua"]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".js") || n.endsWith(".lua")).sort()) {
      const b = readFileSync(`${dir}/${f}`);
      rows.push([`${dir}/${f}`, b.length, gzipSync(b).length]);
    }
  }
  return table(["artefact", "bytes", "gzip bytes"], rows) + "\nGoal: the Espruino core under 12 KB (12288 bytes).";
}
