// The system under audit: `sesame start` from this tree as a user runs it (controller, gateway, simulated
// boards), in a fresh directory, started under umask 000 so that what it makes private it makes private
// itself. What the operator knows (the admin token, the application credential) is read from its
// access.json, or from the lines it prints where an older tree writes no such file.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";

const ROOT = path.resolve(import.meta.dirname, "../..");

export type Access = {
  admin: string;
  token: string;
  mqtt: string;
  /** An application's MQTT credential, where the tree makes one. */
  mqttUser?: string;
  mqttPassword?: string;
  /** A token for /metrics and /status, where they need one. */
  metricsToken?: string;
  gatewayMetrics: string;
  simPort?: number;
  backbonePort: number;
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Two free ports in a row (a cluster's second controller or gateway takes the next). */
export async function freePair(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p < 65535 && (await isFree(p + 1))) return p;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(f: () => Promise<T | undefined> | T | undefined, ms: number, stepMs = 200): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) return undefined;
    await sleep(stepMs);
  }
}

/** The processes whose parent is `pid`, with their command lines. */
export function childrenOf(pid: number): { pid: number; cmd: string[] }[] {
  const out: { pid: number; cmd: string[] }[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) !== pid) continue;
      out.push({ pid: Number(d), cmd: fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").filter(Boolean) });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** The TCP ports a process listens on (from /proc: its socket inodes matched against LISTEN entries). */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`, "utf8"));
    if (m) inodes.add(m[1]);
  }
  const ports: number[] = [];
  for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[3] === "0A" && inodes.has(f[9])) ports.push(parseInt(f[1].split(":")[1], 16));
  }
  return ports;
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

export class Target {
  proc!: ChildProcess;
  access!: Access;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-audit-"));
  readonly stderr: string[] = [];
  readonly stdout: string[] = [];

  /** `cluster`: `sesame start --cluster` (Postgres, Mosquitto, two controllers, two gateways). */
  constructor(readonly cluster = false) {}

  async start(boards: number): Promise<void> {
    // A cluster takes each port and the next (its second controller, gateway).
    const ports = { admin: await freePair(), mqtt: await freePort(), backbone: await freePair(), metrics: await freePair() };
    const old = process.umask(0);
    try {
      this.proc = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "host/cli/main.ts"), "start", "--boards", String(boards), "--dir", path.join(this.dir, "start"),
        "--admin-port", String(ports.admin), "--mqtt-port", String(ports.mqtt), "--backbone-port", String(ports.backbone), "--gateway-metrics-port", String(ports.metrics), ...(this.cluster ? ["--cluster"] : [])],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    } finally {
      process.umask(old);
    }
    createInterface({ input: this.proc.stdout! }).on("line", (l) => this.stdout.push(l));
    createInterface({ input: this.proc.stderr! }).on("line", (l) => this.stderr.push(l));
    const file = path.join(this.dir, "start", "access.json");
    const access = await waitFor(() => {
      if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")) as Access;
      // An older tree: the token is in the curl line it prints.
      const curl = this.stdout.map((l) => /Bearer ([A-Za-z0-9_-]+)' (http:\/\/[0-9.:]+)/.exec(l)).find(Boolean);
      if (!curl) return undefined;
      return { admin: curl[2], token: curl[1], mqtt: `mqtt://127.0.0.1:${ports.mqtt}`, gatewayMetrics: `http://127.0.0.1:${ports.metrics}`, backbonePort: ports.backbone };
    }, 120_000);
    if (!access) throw new Error(`sesame start did not come up: ${this.stderr.slice(-5).join(" / ")}`);
    this.access = access;
    // An older tree prints no simulator port: it is the gateway's other listening port.
    const gw = this.child("gateway");
    if (access.simPort === undefined && gw) access.simPort = listeningPorts(gw.pid).find((p) => p !== ports.metrics);
  }

  child(name: "controller" | "gateway" | "mosquitto" | "postgres"): { pid: number; cmd: string[] } | undefined {
    const kids = childrenOf(this.proc.pid!);
    if (name === "mosquitto" || name === "postgres") return kids.find((c) => path.basename(c.cmd[0] ?? "") === name);
    return kids.find((c) => c.cmd.includes(name) && c.cmd.some((a) => a.endsWith("main.ts")));
  }

  async admin(method: string, route: string, body?: unknown, token: string | undefined = this.access.token, from?: string): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const r = await httpRequest(this.access.admin + route, method, headers, body === undefined ? undefined : JSON.stringify(body), from);
    let json: unknown;
    try {
      json = JSON.parse(r.body);
    } catch {
      json = r.body;
    }
    return { status: r.status, json };
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      this.proc.kill("SIGTERM");
      await Promise.race([new Promise((r) => this.proc.once("exit", r)), sleep(15_000)]);
      if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One HTTP request, optionally from a given local address (127.0.0.2 plays a host elsewhere). */
export function httpRequest(url: string, method: string, headers: Record<string, string>, body?: string, localAddress?: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
    let data = "";
    s.setTimeout(10_000, () => s.destroy());
    s.on("connect", () => {
      const h = { host: u.host, connection: "close", ...headers, ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}) };
      s.write(`${method} ${u.pathname}${u.search} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${body ?? ""}`);
    });
    s.on("data", (d) => (data += d.toString()));
    s.on("error", () => {});
    s.on("close", () => {
      const m = /^HTTP\/1\.1 (\d+)/.exec(data);
      const i = data.indexOf("\r\n\r\n");
      resolve({ status: m ? Number(m[1]) : 0, body: i >= 0 ? data.slice(i + 4) : "" });
    });
  });
}
