// deploy/cluster/compose.yaml cannot run here (no container engine), so what it asks of sesame is checked
// instead: every command line and SESAME_* variable it gives a controller or a gateway is one those commands
// take, with values they accept; every ${VARIABLE} it uses is in env.example; the files it mounts exist. The
// topology itself (Postgres, Mosquitto, two controllers, gateways that know both) runs in
// test/host/cluster.test.ts and under `npm start -- --cluster` (test/host/cli/start.test.ts).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { CORE_SCHEMA, load, mergeTag } from "js-yaml";
import { CONTROLLER } from "../../host/cli/controller";
import { GATEWAY } from "../../host/cli/gateway";
import { hostPorts, parseOptions, type CommandSpec } from "../../host/cli/options";

const DIR = path.resolve(import.meta.dirname, "../../deploy/cluster");
type Service = { command?: string[]; environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, unknown> };

/** What compose would make of "${VAR:-default}" / "${VAR:?message}" with VAR set to `value`. */
const interpolate = (s: string, value: (name: string) => string) => s.replace(/\$\{([A-Z_]+)(?::[-?][^}]*)?\}/g, (_, name: string) => value(name));

describe("deploy/cluster: the compose file asks only for what sesame takes", () => {
  const text = fs.readFileSync(path.join(DIR, "compose.yaml"), "utf8");
  // Compose reads YAML merge keys (<<); the core schema with the merge tag does likewise.
  const compose = load(text, { schema: CORE_SCHEMA.withTags([mergeTag]) }) as { services: Record<string, Service> };
  const example = fs.readFileSync(path.join(DIR, "env.example"), "utf8");
  const documented = new Set([...example.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]));
  // Values an operator would put in .env: a token hash list, a controller key, two gateways.
  const hex64 = "ab".repeat(32);
  const values: Record<string, string> = {
    PG_PASSWORD: "pw", MQTT_PASSWORD: "pw", ADMIN_TOKENS: `ops:${hex64}`, METRICS_TOKENS: "", CONTROLLER_KEY: hex64,
    GATEWAYS: `0a0b0c0d:${hex64}:terminate,01020304:${hex64}:relay`,
  };

  it("every ${VARIABLE} is in env.example", () => {
    const used = new Set([...text.matchAll(/\$\{([A-Z_]+)/g)].map((m) => m[1]));
    assert.deepEqual([...used].filter((v) => !documented.has(v)), []);
    assert.deepEqual([...used].sort(), Object.keys(values).sort(), "the test's values cover every variable");
  });

  for (const [name, spec] of [["controller", CONTROLLER], ["gateway", GATEWAY]] as [string, CommandSpec][]) {
    it(`the ${name}s' flags and SESAME_* variables are ${name} options, with values it accepts`, () => {
      const services = Object.entries(compose.services).filter(([, s]) => s.command?.[0] === name);
      assert.equal(services.length, 2, `two ${name}s`);
      for (const [id, s] of services) {
        const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), (n) => values[n])]));
        for (const k of Object.keys(env)) {
          const option = k.replace(/^SESAME_/, "").toLowerCase().replace(/_/g, "-");
          assert.ok(k.startsWith("SESAME_") && option in spec.options, `${id}: ${k} is no ${name} option`);
        }
        const argv = s.command!.slice(1).map((a) => interpolate(a, (n) => values[n]));
        const v = parseOptions(spec, argv, env);
        if (name === "gateway") {
          assert.equal(hostPorts(v, "controller").length, 2, `${id} knows both controllers`);
          assert.match(String(v["controller-key"]), /^[0-9a-f]{64}$/);
        } else {
          assert.match(String(v["db-url"]), /^postgres:\/\/sesame:pw@postgres:5432\/sesame$/);
          assert.match(String(v["mqtt-url"]), /^mqtts:\/\/sesame-controller:pw@mosquitto:8883$/);
          assert.deepEqual(v.gateway, values.GATEWAYS.split(","));
          // The master key directory and the backbone key file are on the volume both controllers share.
          assert.ok(s.volumes?.some((m) => m.startsWith("shared:/var/lib/sesame/shared")), `${id} mounts the shared volume`);
          for (const k of ["master-key-dir", "key-file"]) assert.ok(String(v[k]).startsWith("/var/lib/sesame/shared/"), `${id}: --${k}`);
        }
      }
    });
  }

  it("the second controller starts after the first (which makes the keys), and the files mounted exist", () => {
    assert.deepEqual(compose.services["controller-2"].depends_on?.["controller-1"], { condition: "service_healthy" });
    for (const s of Object.values(compose.services)) {
      for (const m of s.volumes ?? []) {
        const from = m.split(":")[0];
        if (from.startsWith(".")) assert.ok(fs.existsSync(path.resolve(DIR, from)) || from.endsWith("ca.crt"), `${from} is missing`);
      }
    }
    assert.ok(fs.existsSync(path.join(DIR, "Dockerfile")));
  });
});
