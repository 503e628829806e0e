// What a PromQL expression reads, for tests that hold dashboards and alert rules to the real /metrics:
// the metric names it selects with the labels it matches on, and the labels it groups by. A reader for the
// expressions sesame ships (selectors, functions, aggregations, binary operators), not a whole parser.

export type PromqlUses = { selectors: { metric: string; labels: string[] }[]; grouping: string[] };

const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"]);

export function promqlUses(expr: string): PromqlUses {
  let e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values and $variables inside them
    .replace(/\[[^\]]*\]/g, ""); // ranges and subqueries
  const grouping: string[] = [];
  e = e.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, list: string) => {
    grouping.push(...list.split(",").map((l) => l.trim()).filter((l) => l !== ""));
    return " ";
  });
  // label_values(selector, label): Grafana's variable query.
  e = e.replace(/\blabel_values\s*\(([^,]*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g, (_, sel: string, label: string) => {
    grouping.push(label);
    return ` ${sel} `;
  });
  const selectors: PromqlUses["selectors"] = [];
  for (const m of e.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    const [, name, matchers, call] = m;
    if (call !== undefined || KEYWORDS.has(name) || (m.index > 0 && /[0-9.]/.test(e[m.index - 1]))) continue;
    const labels = matchers === undefined ? [] : [...matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]);
    selectors.push({ metric: name, labels });
  }
  return { selectors, grouping };
}
