// `sesame start` (npm start) as a user runs it, short form: its controller and gateway children are each
// killed with -9 while boards report, and the test sees the death said at once, the status line name the part
// that is down, the child back by itself and readings flowing again; then killing `sesame start` itself
// leaves no child behind.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { postgresDirFor } from "../../../host/cli/start-cluster";
import { ensureBuilt } from "../../harness/build-once";
import { freePort } from "../../harness/mosquitto";
import { until } from "../../harness/until";

const ROOT = path.resolve(import.meta.dirname, "../../..");

/** The processes whose parent is `pid`, by their command line. */
function childrenOf(pid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push({ pid: Number(d), cmd: fs.readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ") });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("sesame start: supervised controller and gateway", function () {
  this.timeout(300_000);
  let proc: ChildProcess | undefined;
  let dir = "";
  before(async () => {
    const { error } = await ensureBuilt();
    assert.equal(error, undefined, error);
  });
  after(() => {
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("says a death at once, shows the part down, restarts it, and readings flow again", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-start-"));
    const [admin, mqtt, backbone, metrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
    proc = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "host/cli/main.ts"), "start", "--boards", "3", "--dir", dir,
      "--admin-port", String(admin), "--mqtt-port", String(mqtt), "--backbone-port", String(backbone), "--gateway-metrics-port", String(metrics)], {
      cwd: ROOT, stdio: ["ignore", "pipe", "pipe"],
    });
    const out: string[] = [], err: string[] = [];
    createInterface({ input: proc.stdout! }).on("line", (l) => out.push(l));
    createInterface({ input: proc.stderr! }).on("line", (l) => err.push(l));
    // The status needs the metrics token `sesame start` made (in its access.json, owner-only).
    const token = () => (JSON.parse(fs.readFileSync(path.join(dir, "access.json"), "utf8")) as { metricsToken: string }).metricsToken;
    const readings = async (): Promise<number> => {
      try {
        return ((await (await fetch(`http://127.0.0.1:${admin}/status`, { headers: { authorization: `Bearer ${token()}` } })).json()) as { uplinks: number }).uplinks;
      } catch {
        return -1;
      }
    };
    const child = (name: string) => childrenOf(proc!.pid!).find((c) => c.cmd.includes(`main.ts ${name}`));
    await until(async () => (await readings()) >= 3, `readings from the boards (stderr: ${err.slice(-3).join(" / ")})`, 120_000);
    // It prints where the web console is, and the console is there.
    const consoleUrl = /console:\s+(http:\/\/\S+)/.exec(out.join("\n"))?.[1];
    assert.equal(consoleUrl, `http://127.0.0.1:${admin}/console/`);
    const page = await fetch(consoleUrl!);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(await page.text(), /<title>sesame console<\/title>/);

    for (const name of ["gateway", "controller"]) {
      const before = child(name);
      assert.ok(before, `a ${name} child runs`);
      const linesBefore = out.length;
      process.kill(before.pid, "SIGKILL");
      await until(() => err.some((l) => l.includes(`the ${name} died (killed by SIGKILL)`)), `the ${name}'s death said`, 10_000);
      await until(() => err.some((l) => l.includes(`the ${name} is back`)), `the ${name} back`, 60_000);
      const after = child(name);
      assert.ok(after && after.pid !== before.pid, `a new ${name} process`);
      assert.ok(out.slice(linesBefore).some((l) => l.startsWith(`${name.toUpperCase()} `)), `the status line named the ${name} while it was down`);
      // The controller's counters start again at its restart; the gateway's restart leaves them counting.
      const base = name === "controller" ? 0 : await readings();
      await until(async () => (await readings()) >= base + 2, `readings again after the ${name} restarted`, 120_000);
    }

    // `sesame start` killed outright: its children notice (their IPC channel closes) and stop.
    // (tsx may have its own helper child, esbuild's service: only sesame's children count here.)
    const kids = childrenOf(proc.pid!).filter((c) => /main\.ts (controller|gateway) /.test(c.cmd)).map((c) => c.pid);
    assert.equal(kids.length, 2, "a controller and a gateway");
    proc.kill("SIGKILL");
    await until(() => kids.every((k) => !alive(k)), "children gone after their parent's death", 20_000);
  });

  it("--cluster: Postgres, Mosquitto, two controllers and two gateways, all supervised; a controller killed, readings carry on through the other; nothing outlives start", async () => {
    const cdir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-start-cluster-"));
    const pair = async () => {
      for (;;) {
        const p = await freePort();
        if (p < 65535 && (await freeAt(p + 1))) return p;
      }
    };
    const [admin, backbone, metrics, mqtt] = [await pair(), await pair(), await pair(), await freePort()];
    const cluster = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "host/cli/main.ts"), "start", "--cluster", "--boards", "2", "--dir", cdir,
      "--admin-port", String(admin), "--mqtt-port", String(mqtt), "--backbone-port", String(backbone), "--gateway-metrics-port", String(metrics)], {
      cwd: ROOT, stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const out: string[] = [], err: string[] = [];
      createInterface({ input: cluster.stdout! }).on("line", (l) => out.push(l));
      createInterface({ input: cluster.stderr! }).on("line", (l) => err.push(l));
      const token = () => (JSON.parse(fs.readFileSync(path.join(cdir, "access.json"), "utf8")) as { metricsToken: string }).metricsToken;
      const readings = async (i: number): Promise<number> => {
        try {
          return ((await (await fetch(`http://127.0.0.1:${admin + i}/status`, { headers: { authorization: `Bearer ${token()}` } })).json()) as { uplinks: number }).uplinks;
        } catch {
          return -1;
        }
      };
      await until(async () => (await readings(0)) + (await readings(1)) >= 3, `readings (stderr: ${err.slice(-3).join(" / ")})`, 120_000);
      const kids = childrenOf(cluster.pid!);
      for (const [what, n] of [[/^\S*\/postgres /, 1], [/^\S*\/mosquitto /, 1], [/main\.ts controller /, 2], [/main\.ts gateway /, 2]] as const) {
        assert.equal(kids.filter((k) => what.test(k.cmd)).length, n, `${what}: ${kids.map((k) => k.cmd).join(" | ")}`);
      }
      assert.ok(!kids.some((k) => k.cmd.includes("sesame-controller:")), "the broker password is on a command line");
      const first = kids.find((k) => k.cmd.includes("main.ts controller") && k.cmd.includes(`--admin-port ${admin} `))!;
      process.kill(first.pid, "SIGKILL");
      await until(() => err.some((l) => l.includes("the controller 1 died (killed by SIGKILL)")), "the death said", 10_000);
      // Both gateways are on the second controller now (the first one's moved), and readings go on there.
      const base = await readings(1);
      await until(async () => (await readings(1)) >= base + 2, "readings through the second controller", 60_000);
      await until(() => err.some((l) => l.includes("the controller 1 is back")), "the first controller back", 60_000);
      cluster.kill("SIGKILL");
      await until(() => kids.every((k) => k.pid === first.pid || !alive(k.pid)), "every child gone, the servers too", 20_000);
    } finally {
      if (cluster.exitCode === null) cluster.kill("SIGKILL");
      fs.rmSync(cdir, { recursive: true, force: true });
      fs.rmSync(postgresDirFor(cdir), { recursive: true, force: true });
    }
  });
});

/** Whether `port` can be listened on now. */
function freeAt(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}
