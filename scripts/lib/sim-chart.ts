// The simulator's chart, as a self-contained SVG: on the left, reading latency as a cumulative distribution per
// board type; on the right, LoRa air time per board against the 1 % duty-cycle budget for the run's length.
import type { BoardResult } from "../../host/sim/fleet";
import type { LoraTx } from "../../host/sim/radio-lora";

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
const W = 900, H = 380, PAD = 50, GAP = 60;
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

function axis(x0: number, y0: number, w: number, h: number, xLabel: string, yLabel: string, xMax: number, yMax: number, xFmt: (v: number) => string, yFmt: (v: number) => string): string {
  const parts = [`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#999"/>`];
  for (let i = 0; i <= 4; i++) {
    const x = x0 + (w * i) / 4, y = y0 + h - (h * i) / 4;
    parts.push(`<text x="${x}" y="${y0 + h + 14}" font-size="10" text-anchor="middle">${xFmt((xMax * i) / 4)}</text>`);
    parts.push(`<text x="${x0 - 4}" y="${y + 3}" font-size="10" text-anchor="end">${yFmt((yMax * i) / 4)}</text>`);
    parts.push(`<line x1="${x0}" x2="${x0 + w}" y1="${y}" y2="${y}" stroke="#eee"/>`);
  }
  parts.push(`<text x="${x0 + w / 2}" y="${y0 + h + 30}" font-size="11" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text x="${x0 - 38}" y="${y0 + h / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 ${x0 - 38} ${y0 + h / 2})">${esc(yLabel)}</text>`);
  return parts.join("\n");
}

export function fleetChart(results: BoardResult[], lora: LoraTx[], minutes: number): string {
  const pw = (W - 2 * PAD - GAP) / 2, ph = H - 2 * PAD - 20;
  const profiles = [...new Set(results.map((r) => r.profile))].sort();
  const colour = (p: string) => COLOURS[profiles.indexOf(p) % COLOURS.length];
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`, `<rect width="${W}" height="${H}" fill="white"/>`];

  // Latency CDF, x on a log scale from 10 ms to the largest latency seen.
  const all = results.flatMap((r) => r.latencies).filter((x) => x > 0);
  const maxLat = Math.max(1000, ...all);
  const lx = (ms: number) => PAD + (pw * Math.log10(Math.max(10, ms) / 10)) / Math.log10(maxLat / 10);
  out.push(`<text x="${PAD}" y="20" font-size="13" font-weight="bold">Reading latency (sensor to gateway application), CDF</text>`);
  out.push(axis(PAD, PAD, pw, ph, "latency (log scale)", "share of readings", maxLat, 1, (v) => `${(10 * (maxLat / 10) ** (v / maxLat) / 1000).toFixed(v === 0 ? 2 : 1)} s`, (v) => `${Math.round(v * 100)}%`));
  profiles.forEach((p, i) => {
    const xs = results.filter((r) => r.profile === p).flatMap((r) => r.latencies).sort((a, b) => a - b);
    if (xs.length === 0) return;
    const pts = xs.map((x, k) => `${lx(x).toFixed(1)},${(PAD + ph - (ph * (k + 1)) / xs.length).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${colour(p)}" stroke-width="1.5" points="${pts.join(" ")}"/>`);
    out.push(`<text x="${PAD + 6}" y="${PAD + 14 + 13 * i}" font-size="10" fill="${colour(p)}">${esc(p)} (${xs.length})</text>`);
  });

  // LoRa air time per board against the duty-cycle budget for the run.
  const x0 = PAD + pw + GAP;
  // The limit is 36 s in any hour (a sliding window): a run of up to an hour may use all of it.
  const budgetMs = 36_000 * Math.max(1, minutes / 60);
  const perBoard = results.filter((r) => r.airtimeMs > 0).sort((a, b) => b.airtimeMs - a.airtimeMs);
  const yMax = Math.max(budgetMs * 1.2, ...perBoard.map((r) => r.airtimeMs));
  out.push(`<text x="${x0}" y="20" font-size="13" font-weight="bold">LoRa air time per board (${lora.length} frames on air)</text>`);
  out.push(axis(x0, PAD, pw, ph, `boards (${perBoard.length})`, "air time", perBoard.length, yMax, () => "", (v) => `${(v / 1000).toFixed(0)} s`));
  const bw = perBoard.length ? pw / perBoard.length : 0;
  perBoard.forEach((r, i) => {
    const h = (ph * r.airtimeMs) / yMax;
    out.push(`<rect x="${(x0 + i * bw + 0.5).toFixed(1)}" y="${(PAD + ph - h).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${colour(r.profile)}"><title>${esc(r.name)}: ${(r.airtimeMs / 1000).toFixed(1)} s</title></rect>`);
  });
  const by = PAD + ph - (ph * budgetMs) / yMax;
  out.push(`<line x1="${x0}" x2="${x0 + pw}" y1="${by}" y2="${by}" stroke="#d62728" stroke-dasharray="4 3"/>`);
  out.push(`<text x="${x0 + pw - 4}" y="${by - 4}" font-size="10" text-anchor="end" fill="#d62728">1 % duty cycle: 36 s in any hour</text>`);
  out.push("</svg>");
  return out.join("\n");
}
