// Writes the Grafana dashboards in deploy/grafana/: one for the gateway's /metrics, one for the controller's
// (docs/CONTROLLER.md "Telemetry"). Both are made here from one list of panels, so the two cannot drift
// apart; test/deploy/monitoring.test.ts checks the files are what this writes, and that every metric and
// label they name is on the real endpoints. Run: tsx scripts/dashboards.ts
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type Process = "gateway" | "controller";
type Target = { expr: string; legendFormat: string };
type Panel = { title: string; description: string; unit: string; targets: Target[]; on: Process[]; stack?: boolean };

/** Grafana's schema version of the JSON below (Grafana 10 and 11 import it as it is). */
export const SCHEMA_VERSION = 39;
const DATASOURCE = { type: "prometheus", uid: "${datasource}" };
/** The series of the chosen job and instances. */
const SEL = 'job="$job", instance=~"$instance"';
const rate = (metric: string, extra = "") => `rate(${metric}{${SEL}${extra}}[$__rate_interval])`;
const quantile = (q: number) => ({
  expr: `histogram_quantile(${q}, sum by (le) (${rate("sesame_message_latency_seconds_bucket")}))`,
  legendFormat: `P${Math.round(q * 100)}`,
});

const PANELS: Panel[] = [
  {
    title: "Throughput", unit: "msg/s", on: ["gateway", "controller"],
    description: "Device messages a second, by direction. Gateway: messages up from devices and down to them (relay: records carried still sealed). Controller: readings published and commands sent.",
    targets: [{ expr: `sum by (direction, mode) (${rate("sesame_messages_total")})`, legendFormat: "{{direction}} ({{mode}})" }],
  },
  {
    title: "Payload bytes", unit: "Bps", on: ["gateway", "controller"],
    description: "Application payload bytes a second, by direction (a relay gateway sees none: it carries sealed records).",
    targets: [{ expr: `sum by (direction) (${rate("sesame_message_bytes_total")})`, legendFormat: "{{direction}}" }],
  },
  {
    title: "Latency P50 / P95 / P99", unit: "s", on: ["controller"],
    description: "From a reading's arrival (at the gateway, or the controller in relay mode) to its publication, from the histogram sesame_message_latency_seconds. The SES guide's target: P95 under 150 ms; the alert is at 300 ms.",
    targets: [quantile(0.5), quantile(0.95), quantile(0.99)],
  },
  {
    title: "Queue lengths", unit: "short", on: ["gateway", "controller"],
    description: "Items waiting in each bounded queue: backbone-out on a gateway (to the controller), mqtt-out on the controller (to the broker).",
    targets: [{ expr: `sum by (queue) (sesame_queue_length{${SEL}})`, legendFormat: "{{queue}}" }],
  },
  {
    title: "Queue drops", unit: "msg/s", on: ["gateway", "controller"],
    description: "Messages a full queue refused, a second: any is lost data.",
    targets: [
      { expr: `sum by (queue) (${rate("sesame_queue_dropped_total")})`, legendFormat: "{{queue}}" },
    ],
  },
  {
    title: "Handshakes by outcome", unit: "ops", on: ["gateway", "controller"], stack: true,
    description: "Handshakes a second by mode and outcome: ok, failed, throttled (the source's token bucket was empty), malformed, evicted (half-open state full). A gateway counts them in terminate mode, the controller in relay mode.",
    targets: [{ expr: `sum by (mode, outcome) (${rate("sesame_handshakes_total")})`, legendFormat: "{{mode}} {{outcome}}" }],
  },
  {
    title: "Auth failures by reason", unit: "ops", on: ["gateway", "controller"], stack: true,
    description: "Device records refused a second: tag (forged or corrupted), replay, unknown-spi (no such session), malformed, gpcomp (a compression bomb).",
    targets: [{ expr: `sum by (reason) (${rate("sesame_auth_failures_total")})`, legendFormat: "{{reason}}" }],
  },
  {
    title: "Key use per epoch", unit: "ops", on: ["gateway", "controller"], stack: true,
    description: "Records sealed and opened a second under each key epoch (the index i of K_i; a session moves to the next key by itself before any limit).",
    targets: [{ expr: `sum by (epoch) (${rate("sesame_key_records_total")})`, legendFormat: "epoch {{epoch}}" }],
  },
  {
    title: "Most used key, share of its limit", unit: "percentunit", on: ["gateway", "controller"],
    description: "The live session key closest to a usage limit: records sealed over q (the key moves on at 1) and forged records refused over v (the key is retired at 1; the alert is at 0.5).",
    targets: [{ expr: `max by (limit) (sesame_key_limit_ratio{${SEL}})`, legendFormat: "{{limit}}" }],
  },
  {
    title: "Devices online", unit: "short", on: ["gateway", "controller"],
    description: "Gateway: devices with a confirmed session. Controller: devices heard from in the last ten minutes.",
    targets: [{ expr: `sum(sesame_devices_online{${SEL}})`, legendFormat: "online" }],
  },
  {
    title: "MQTT delivery", unit: "msg/s", on: ["controller"],
    description: "Messages the broker acknowledged (by kind), publishes refused, messages dropped (by reason), and commands received (by outcome).",
    targets: [
      { expr: `sum by (kind) (${rate("sesame_mqtt_published_total")})`, legendFormat: "published {{kind}}" },
      { expr: `sum(${rate("sesame_mqtt_publish_failures_total")})`, legendFormat: "publish failures" },
      { expr: `sum by (reason) (${rate("sesame_mqtt_dropped_total")})`, legendFormat: "dropped {{reason}}" },
      { expr: `sum by (outcome) (${rate("sesame_mqtt_commands_total")})`, legendFormat: "commands {{outcome}}" },
    ],
  },
  {
    title: "MQTT broker connected", unit: "bool_yes_no", on: ["controller"],
    description: "1 while the controller is connected to its MQTT broker.",
    targets: [{ expr: `min(sesame_mqtt_connected{${SEL}})`, legendFormat: "connected" }],
  },
  {
    title: "CPU", unit: "percentunit", on: ["gateway", "controller"],
    description: "Share of one core each process uses (its JavaScript runs on one); the alert is at 80 % for 15 minutes.",
    targets: [{ expr: `sum by (instance) (${rate("sesame_process_process_cpu_seconds_total")})`, legendFormat: "{{instance}}" }],
  },
  {
    title: "Memory and event-loop lag", unit: "bytes", on: ["gateway", "controller"],
    description: "Resident memory, and the event loop's P99 lag (right axis): a lag of tens of milliseconds delays every packet.",
    targets: [
      { expr: `sum by (instance) (sesame_process_process_resident_memory_bytes{${SEL}})`, legendFormat: "resident {{instance}}" },
      { expr: `max by (instance) (sesame_process_nodejs_eventloop_lag_p99_seconds{${SEL}})`, legendFormat: "loop lag P99 {{instance}}" },
    ],
  },
];

function variables(process: Process) {
  const job = `sesame-${process}`;
  return [
    { name: "datasource", label: "Data source", type: "datasource", query: "prometheus", current: {}, hide: 0, refresh: 1, regex: "", options: [] },
    {
      name: "job", label: "Job", type: "query", datasource: DATASOURCE, refresh: 1, hide: 0, includeAll: false, multi: false, sort: 1,
      definition: "label_values(sesame_messages_total, job)", query: { query: "label_values(sesame_messages_total, job)", refId: "job" },
      current: { text: job, value: job }, options: [], regex: "",
    },
    {
      name: "instance", label: "Instance", type: "query", datasource: DATASOURCE, refresh: 2, hide: 0, includeAll: true, multi: true, allValue: ".*", sort: 1,
      definition: 'label_values(sesame_messages_total{job="$job"}, instance)', query: { query: 'label_values(sesame_messages_total{job="$job"}, instance)', refId: "instance" },
      current: { text: "All", value: "$__all" }, options: [], regex: "",
    },
  ];
}

function panel(p: Panel, id: number, x: number, y: number) {
  const lag = p.targets.find((t) => t.expr.includes("eventloop_lag"));
  return {
    id, type: "timeseries", title: p.title, description: p.description, datasource: DATASOURCE,
    gridPos: { h: 8, w: 12, x, y },
    targets: p.targets.map((t, i) => ({ refId: String.fromCharCode(65 + i), datasource: DATASOURCE, expr: t.expr, legendFormat: t.legendFormat, range: true })),
    fieldConfig: {
      defaults: { unit: p.unit, min: 0, custom: { drawStyle: "line", lineWidth: 1, fillOpacity: p.stack ? 30 : 10, stacking: { mode: p.stack ? "normal" : "none", group: "A" } } },
      overrides: lag === undefined ? [] : [{
        matcher: { id: "byFrameRefID", options: String.fromCharCode(65 + p.targets.indexOf(lag)) },
        properties: [{ id: "unit", value: "s" }, { id: "custom.axisPlacement", value: "right" }],
      }],
    },
    options: { legend: { displayMode: "list", placement: "bottom", showLegend: true }, tooltip: { mode: "multi", sort: "desc" } },
  };
}

/** The dashboard for one process's /metrics, as Grafana's JSON model. */
export function dashboard(process: Process) {
  const panels = PANELS.filter((p) => p.on.includes(process)).map((p, i) => panel(p, i + 1, (i % 2) * 12, Math.floor(i / 2) * 8));
  return {
    id: null, uid: `sesame-${process}`, title: `sesame ${process}`, tags: ["sesame"], timezone: "browser", editable: true,
    description: `The sesame ${process}'s /metrics (docs/CONTROLLER.md "Telemetry"); generated by scripts/dashboards.ts.`,
    graphTooltip: 1, refresh: "30s", schemaVersion: SCHEMA_VERSION, version: 1, time: { from: "now-1h", to: "now" },
    annotations: { list: [] }, templating: { list: variables(process) }, panels,
  };
}

export const DASHBOARD_FILES: Record<Process, string> = { gateway: "deploy/grafana/sesame-gateway.json", controller: "deploy/grafana/sesame-controller.json" };

export function dashboardText(process: Process): string {
  return JSON.stringify(dashboard(process), null, 2) + "\n";
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const p of ["gateway", "controller"] as const) {
    writeFileSync(new URL(`../${DASHBOARD_FILES[p]}`, import.meta.url), dashboardText(p));
    console.log(`${DASHBOARD_FILES[p]}: ${dashboard(p).panels.length} panels`);
  }
}
