// Bounded label values. Every distinct label value is a new time series in Prometheus; a value that comes from
// the outside (a reason string, a mode a peer claims) must not be able to create them without limit.

/** Label values are short, printable and predictable: other characters become "_", long ones are cut. */
export function cleanLabel(v: unknown): string {
  const s = String(v).replace(/[^A-Za-z0-9_.:-]/g, "_").slice(0, 40);
  return s === "" ? "none" : s;
}

/** Admits the first `max` distinct values of one label; later new values are reported as "other". */
export class LabelGuard {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  admit(v: unknown): string {
    const s = cleanLabel(v);
    if (this.seen.has(s)) return s;
    if (this.seen.size >= this.max) return "other";
    this.seen.add(s);
    return s;
  }
}
