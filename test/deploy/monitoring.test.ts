// What operators import: the Grafana dashboards (deploy/grafana/, written by scripts/dashboards.ts) and the
// Prometheus alert rules and scrape example (deploy/prometheus/). The rules are loaded and unit-tested by
// promtool (Debian's prometheus package; .ci/run installs it), and every metric and label the dashboards and
// rules name must be on the real endpoints: a controller and a gateway, in both gateway modes, with
// devices handshaking, sending readings and forgeries, and a command through MQTT. Grafana itself does not
// run here: its JSON is checked for the structure an import needs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { load } from "js-yaml";
import mqtt from "mqtt";
import { encodeData } from "../../firmware/runtime/messages";
import { epTakeOutput } from "../../firmware/session/endpoint";
import { outboundSeal } from "../../firmware/session/sa";
import { sessionSend } from "../../firmware/session/session";
import { hashToken } from "../../host/controller/tokens";
import { serveMetrics } from "../../host/telemetry/metrics-http";
import { DASHBOARD_FILES, dashboard, dashboardText, SCHEMA_VERSION, type Process } from "../../scripts/dashboards";
import { parseExposition, type Sample } from "../harness/prometheus";
import { promqlUses } from "../harness/promql";
import { startStack } from "../harness/stack";
import { handshake, outputOf, provisioned } from "../harness/stack-devices";
import { until } from "../harness/until";

const RULES = "deploy/prometheus/alerts.yml";
const RULE_TESTS = "deploy/prometheus/alerts.test.yml";
const SCRAPE_EXAMPLE = "deploy/prometheus/prometheus.yml";

type Rule = { alert: string; expr: string };
const rules = (): Rule[] => (load(fs.readFileSync(RULES, "utf8")) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

function promtool(args: string[], input?: string): { ok: boolean; output: string } {
  const r = spawnSync("promtool", args, { encoding: "utf8", timeout: 60_000, input });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/** Why promtool cannot run here, or undefined. In CI it must: .ci/run installs it. */
function promtoolMissing(): string | undefined {
  const r = spawnSync("promtool", ["--version"], { encoding: "utf8" });
  return r.error === undefined && r.status === 0 ? undefined : "promtool is not installed (apt-get install prometheus; .ci/run does)";
}

/** One /metrics text: its families (TYPE lines) and samples. */
type Scrape = { where: string; text: string; types: Map<string, string>; samples: Sample[] };

function scrape(where: string, text: string): Scrape {
  const { types, samples } = parseExposition(text);
  return { where, text, types, samples };
}

/** What promtool check metrics says of prom-client's default metrics (collectDefaultMetrics), not of ours. */
const UPSTREAM_LINT = /^sesame_process_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

// Prometheus adds these to every series it scrapes; `up` is its own.
const TARGET_LABELS = new Set(["job", "instance"]);
const PROMETHEUS_SERIES = new Set(["up"]);

/** What in `expr` is not on any of `scrapes`: unknown names, histogram series of a non-histogram, labels no sample has. */
function missing(expr: string, scrapes: Scrape[]): string[] {
  const problems: string[] = [];
  const uses = promqlUses(expr);
  const samplesOf = (name: string) => scrapes.flatMap((s) => s.samples.filter((x) => x.name === name));
  for (const { metric, labels } of uses.selectors) {
    if (PROMETHEUS_SERIES.has(metric)) continue;
    const suffix = /_(bucket|sum|count)$/.exec(metric);
    const base = suffix ? metric.slice(0, -suffix[0].length) : metric;
    const histogram = suffix !== null && scrapes.some((s) => s.types.get(base) === "histogram");
    if (suffix?.[1] === "bucket" && !histogram) problems.push(`${metric}: no histogram ${base} on ${scrapes.map((s) => s.where).join(", ")}`);
    else if (!histogram && !scrapes.some((s) => s.types.has(metric))) problems.push(`${metric}: on none of ${scrapes.map((s) => s.where).join(", ")}`);
    for (const l of labels) {
      if (!TARGET_LABELS.has(l) && !samplesOf(metric).some((x) => l in x.labels)) problems.push(`${metric}: no sample has label ${l}`);
    }
  }
  const names = uses.selectors.map((s) => s.metric);
  for (const l of uses.grouping) {
    if (!TARGET_LABELS.has(l) && !names.some((n) => samplesOf(n).some((x) => l in x.labels))) problems.push(`by ${l}: no sample of ${names.join(", ")} has it`);
  }
  return problems;
}

/** The expressions a dashboard evaluates: its panels' targets and its variables' queries. */
function dashboardExprs(d: ReturnType<typeof dashboard>): string[] {
  return [...d.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...d.templating.list.flatMap((v) => ("definition" in v && v.definition !== undefined ? [v.definition] : []))];
}

describe("deploy: Grafana dashboards and Prometheus alert rules", function () {
  this.timeout(240_000);
  const absent = promtoolMissing();
  const needPromtool = (ctx: Mocha.Context) => {
    if (absent === undefined) return;
    if (process.env.CI) assert.fail(absent);
    ctx.skip();
  };
  if (absent !== undefined && !process.env.CI) it(`promtool checks: skipped (${absent})`);

  it("promtool check rules: the alert rules load", function () {
    needPromtool(this);
    const r = promtool(["check", "rules", RULES]);
    assert.ok(r.ok, r.output);
    assert.match(r.output, new RegExp(`SUCCESS: ${rules().length} rules found`));
  });

  it("promtool test rules: each alert fires on a series that breaks it and stays silent on a healthy one", function () {
    needPromtool(this);
    const r = promtool(["test", "rules", RULE_TESTS]);
    assert.ok(r.ok, r.output);
    // Every alert has a case where it fires, and the silent instance "good" is never among the alerts.
    type Expect = { alertname: string; exp_alerts: { exp_labels: Record<string, string> }[] };
    const spec = load(fs.readFileSync(RULE_TESTS, "utf8")) as { tests: { alert_rule_test?: Expect[] }[] };
    const cases = spec.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of rules()) assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert} is never shown firing`);
    for (const c of cases) for (const a of c.exp_alerts) assert.notEqual(a.exp_labels.instance, "good", `${c.alertname} fires for the healthy series`);
  });

  it("promtool check config: the scrape example, with its bearer token files beside it", function () {
    needPromtool(this);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-prometheus-"));
    try {
      for (const f of [SCRAPE_EXAMPLE, RULES]) fs.copyFileSync(f, path.join(dir, path.basename(f)));
      const config = fs.readFileSync(SCRAPE_EXAMPLE, "utf8");
      const tokens = [...config.matchAll(/credentials_file:\s*(\S+)/g)].map((m) => m[1]);
      assert.deepEqual(tokens.sort(), ["sesame-controller.token", "sesame-gateway.token"]);
      for (const t of tokens) fs.writeFileSync(path.join(dir, t), "a-token\n", { mode: 0o600 });
      const r = promtool(["check", "config", path.join(dir, "prometheus.yml")]);
      assert.ok(r.ok, r.output);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const p of ["gateway", "controller"] as const) {
    it(`${DASHBOARD_FILES[p]}: what scripts/dashboards.ts writes, and a dashboard Grafana can import`, () => {
      assert.equal(fs.readFileSync(DASHBOARD_FILES[p], "utf8"), dashboardText(p), "run: npx tsx scripts/dashboards.ts");
      const d = JSON.parse(fs.readFileSync(DASHBOARD_FILES[p], "utf8")) as ReturnType<typeof dashboard>;
      assert.equal(d.schemaVersion, SCHEMA_VERSION);
      assert.equal(d.id, null, "an exported dashboard carries no database id");
      assert.ok(typeof d.uid === "string" && d.uid.length > 0 && d.uid.length <= 40 && typeof d.title === "string");
      const vars = d.templating.list;
      assert.ok(vars.some((v) => v.type === "datasource" && v.query === "prometheus" && v.name === "datasource"), "a Prometheus data source variable");
      const defined = new Set([...vars.map((v) => v.name), "__rate_interval", "__interval", "__range"]);
      assert.ok(d.panels.length >= 8);
      const ids = new Set<number>();
      const cells = new Set<string>();
      for (const panel of d.panels) {
        assert.ok(!ids.has(panel.id), `panel id ${panel.id} twice`);
        ids.add(panel.id);
        assert.equal(panel.type, "timeseries");
        assert.deepEqual(panel.datasource, { type: "prometheus", uid: "${datasource}" }, panel.title);
        const g = panel.gridPos;
        assert.ok(g.w > 0 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24 && g.y >= 0, `${panel.title}: gridPos ${JSON.stringify(g)}`);
        for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `${panel.title} overlaps another panel`);
          cells.add(`${x},${y}`);
        }
        assert.ok(panel.targets.length > 0, `${panel.title}: no targets`);
        assert.equal(new Set(panel.targets.map((t) => t.refId)).size, panel.targets.length, `${panel.title}: refIds repeat`);
        for (const t of panel.targets) {
          assert.ok(t.expr.length > 0 && t.datasource.uid === "${datasource}", `${panel.title}: target ${t.refId}`);
          for (const v of t.expr.matchAll(/\$(\w+)/g)) assert.ok(defined.has(v[1]), `${panel.title}: $${v[1]} is no variable`);
        }
      }
    });
  }

  it("every metric and label the dashboards and rules name is on the real endpoints (both gateway modes), which promtool finds no fault with", async () => {
    const scrapes: Record<Process, Scrape[]> = { gateway: [], controller: [] };
    for (const mode of ["terminate", "relay"] as const) {
      const s = await startStack(mode);
      const gatewayMetrics = await serveMetrics({ metrics: s.gateway.metrics, tokens: [[{ id: "scrape", sha256: hashToken(s.metricsToken) }]], port: 0 });
      const sub = await mqtt.connectAsync(s.ports.mqtt, s.mqttLogin);
      try {
        const take = outputOf(s.gateway);
        const devices = [await provisioned(s), await provisioned(s)];
        const keys = mode === "terminate" ? s.gateway.keys : s.controller.keys;
        await until(() => devices.every((d) => keys.has(d.device.id)), "the devices' keys where their sessions end");
        const links = devices.map((_, i) => `ble:dev${i}`);
        for (const [i, d] of devices.entries()) await handshake(d.dev, links[i], (b) => s.gateway.input(links[i], b), take);
        // Readings from both, a forged one, a replayed one and a record for no session.
        for (const [i, d] of devices.entries()) {
          for (let k = 1; k <= 3; k++) assert.ok(sessionSend(d.dev.session!, encodeData(k, Buffer.from(`reading ${k}`)), Date.now()));
          for (const o of epTakeOutput(d.dev)) s.gateway.input(links[i], o.bytes);
        }
        const seal = (body: string) => outboundSeal(devices[0].dev.session!.out, encodeData(9, Buffer.from(body)), 0, Date.now()) as Uint8Array;
        const forged = seal("forged");
        forged[forged.length - 1] ^= 1;
        const twice = seal("twice");
        for (const b of [forged, twice, twice, Uint8Array.from([0xff, 0xfe, 0xfd, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])]) s.gateway.input(links[0], b);
        await sub.publishAsync(`sesame/devices/${devices[1].device.id}/down`, JSON.stringify({ payload: Buffer.from([2, 1]).toString("base64") }), { qos: 1 });
        const controllerText = async () => {
          const res = await fetch(`http://127.0.0.1:${s.ports.admin}/metrics`, { headers: { authorization: `Bearer ${s.metricsToken}` } });
          assert.equal(res.status, 200);
          return res.text();
        };
        const gatewayText = async () => (await fetch(gatewayMetrics.url, { headers: { authorization: `Bearer ${s.metricsToken}` } })).text();
        // Key use is read from the sessions at their holder's next polls: wait for it too.
        const holder = mode === "terminate" ? gatewayText : controllerText;
        await until(async () => {
          const { samples } = parseExposition(await controllerText());
          const published = samples.filter((x) => x.name === "sesame_messages_total" && x.labels.direction === "up").reduce((n, x) => n + x.value, 0);
          const keyUse = parseExposition(await holder()).samples.some((x) => x.name === "sesame_key_records_total");
          return published >= 6 && keyUse && samples.some((x) => x.name === "sesame_mqtt_commands_total");
        }, "the readings published, their keys' use counted and the command taken", 60_000);
        scrapes.controller.push(scrape(`the controller (${mode})`, await controllerText()));
        scrapes.gateway.push(scrape(`the gateway (${mode})`, await gatewayText()));
      } finally {
        await sub.endAsync();
        await gatewayMetrics.close();
        await s.close();
      }
    }
    const problems: string[] = [];
    for (const p of ["gateway", "controller"] as const) {
      for (const expr of dashboardExprs(dashboard(p))) problems.push(...missing(expr, scrapes[p]).map((m) => `${DASHBOARD_FILES[p]}: ${m}\n    in ${expr}`));
    }
    for (const r of rules()) problems.push(...missing(r.expr, [...scrapes.gateway, ...scrapes.controller]).map((m) => `${RULES} ${r.alert}: ${m}`));
    assert.deepEqual(problems, []);
    // What Prometheus's own linter says of each page (names, types, HELP, `le` only on histograms): nothing
    // but prom-client's own process gauges, whose names end in _total upstream (and on every Node.js dashboard).
    if (absent === undefined) {
      for (const x of [...scrapes.gateway, ...scrapes.controller]) {
        const r = promtool(["check", "metrics"], x.text);
        const faults = r.output.split("\n").filter((l) => l.trim() !== "" && !UPSTREAM_LINT.test(l));
        assert.deepEqual(faults, [], `promtool check metrics, ${x.where}`);
      }
    } else if (process.env.CI) assert.fail(absent);
    // The check itself: a name that is not there, a histogram that is not one, a label no sample has.
    assert.equal(missing("rate(sesame_no_such_total[5m])", scrapes.gateway).length, 1);
    assert.equal(missing("sum by (le) (rate(sesame_messages_total_bucket[5m]))", scrapes.gateway).length, 2);
    assert.equal(missing('sesame_handshakes_total{colour="red"}', scrapes.gateway).length, 1);
  });
});
