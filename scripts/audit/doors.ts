// The other doors: the admin API, the backbone, the simulator link, the metrics port, the state on disk, the
// processes, and the master key's rotation.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { BackboneClient, CLIENT_OPEN } from "../../host/backbone/link";
import { postgresDirFor } from "../../host/cli/start-cluster";
import type { Outcome } from "./mqtt";
import { watchApplication } from "./processes";
import { freePort, httpRequest, sleep, waitFor, type Target } from "./target";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** Where the database keeps its files: the state directory's own, or (a cluster) Postgres's directory beside it. */
const databaseDir = (t: Target) => (t.cluster ? postgresDirFor(path.join(t.dir, "start")) : path.join(t.dir, "start", "db"));

/**
 * Files and directories under the state directory (and a cluster's Postgres directory) that another local
 * user could read or write. A socket's own mode is not counted: only its directory's decides who reaches it.
 */
export function fileModes(t: Target): Outcome {
  let all = 0, open = 0;
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    all++;
    if ((st.mode & 0o077) !== 0 && !st.isSymbolicLink() && !st.isSocket()) open++;
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(path.join(t.dir, "start"));
  if (t.cluster) walk(databaseDir(t));
  return { result: `${open} of ${all} files and directories open to group or others (started under umask 000)`, held: open === 0 };
}

/** One bad request every 2 s and the real token every second, 30 s, from the same address. */
export async function adminLockout(t: Target): Promise<Outcome> {
  const codes: Record<number, number> = {};
  const end = Date.now() + 30_000;
  let n = 0;
  while (Date.now() < end) {
    if (n++ % 2 === 0) await t.admin("GET", "/v1/devices", undefined, "wrong-token");
    const r = await t.admin("GET", "/v1/devices");
    codes[r.status] = (codes[r.status] ?? 0) + 1;
    await sleep(1000);
  }
  const text = Object.entries(codes).map(([c, k]) => `${k} x ${c}`).join(", ");
  return { result: `the real token got ${text}`, held: Object.keys(codes).every((c) => c === "200") };
}

/** The newest audit row's id; waits out a lock-out of this address (an older tree locks out even the real token). */
async function auditTop(t: Target): Promise<number> {
  const r = await waitFor(async () => {
    const a = await t.admin("GET", "/v1/audit?limit=1");
    return a.status === 200 ? a : undefined;
  }, 120_000, 2000);
  if (r === undefined) throw new Error("the audit log could not be read for 120 s (the real token locked out)");
  return Number((r.json as { entries: { id: string }[] }).entries[0]?.id ?? 0);
}

function duBytes(dir: string): number {
  let n = 0;
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const f of fs.readdirSync(p)) walk(path.join(p, f));
    else n += st.size;
  };
  walk(dir);
  return n;
}

/** 10,000 unauthenticated requests, 20 at a time: audit rows and database bytes they add. */
export async function auditFlood(t: Target): Promise<Outcome> {
  const top = await auditTop(t);
  const db = databaseDir(t);
  const size = duBytes(db);
  let left = 10_000;
  const started = Date.now();
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (left-- > 0) await httpRequest(`${t.access.admin}/v1/devices`, "GET", { authorization: "Bearer nope" });
  }));
  const secs = (Date.now() - started) / 1000;
  await sleep(2000);
  const rows = (await auditTop(t)) - top - 1; // the listing call itself is one row
  const grown = (duBytes(db) - size) / 1e6;
  return { result: `${rows} audit rows and ${grown.toFixed(1)} MB added by 10,000 refused requests in ${secs.toFixed(0)} s`, held: rows < 1000 };
}

/** Silent TCP connections to the backbone from another address, while a listed gateway (re)connects. */
export async function backboneFlood(t: Target, rate = 200): Promise<Outcome> {
  const key = JSON.parse(fs.readFileSync(path.join(t.dir, "start", "gateway.key"), "utf8")) as { kid: string; public: string; secret: string };
  const ctlKey = JSON.parse(fs.readFileSync(path.join(t.dir, "start", "controller.key"), "utf8")) as { public: string };
  const hexb = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
  const sockets: net.Socket[] = [];
  let flooding = true, opened = 0;
  const flood = (async () => {
    while (flooding) {
      const s = net.connect({ port: t.access.backbonePort, host: "127.0.0.1", localAddress: "127.0.0.2" });
      s.on("error", () => {});
      s.on("connect", () => opened++);
      sockets.push(s);
      await sleep(1000 / rate);
    }
  })();
  // The flood fills whatever it can; the gateway then comes in the middle of a half-open timeout's cycle (not
  // at the instant a whole first wave of half-open connections times out together).
  await sleep(7500);
  const client = new BackboneClient({ host: "127.0.0.1", port: t.access.backbonePort, identity: { kid: hexb(key.kid), keys: { S: hexb(key.public), s: hexb(key.secret) } }, controllerKey: hexb(ctlKey.public) });
  const started = Date.now();
  client.start();
  const ok = await waitFor(() => client.state === CLIENT_OPEN || undefined, 40_000, 50);
  const secs = (Date.now() - started) / 1000;
  await client.close();
  flooding = false;
  await flood;
  for (const s of sockets) s.destroy();
  return { result: `${rate} silent connections/s from 127.0.0.2 (${opened} opened): a listed gateway ${ok ? `got on in ${secs.toFixed(1)} s` : "stayed off for 40 s"}`, held: ok === true && secs < 5 };
}

/** Another local client on the gateway's simulator port, reconnecting as soon as it is dropped: readings the application gets per 20 s. */
export async function simIntruder(t: Target): Promise<Outcome> {
  const port = t.access.simPort;
  if (port === undefined) return { result: "simulator port unknown", held: false };
  const { w, stop } = await watchApplication(t);
  await sleep(20_000);
  const alone = w.arrivals;
  let on = true, accepted = 0;
  const intrude = async () => {
    while (on) {
      await new Promise<void>((resolve) => {
        const s = net.connect(port, "127.0.0.1");
        s.on("connect", () => accepted++);
        s.on("error", () => {});
        s.on("close", () => resolve());
        setTimeout(() => s.destroy(), 2000);
      });
    }
  };
  const loop = intrude();
  await sleep(20_000);
  on = false;
  await loop;
  const withIntruder = w.arrivals - alone;
  await stop();
  return { result: `readings per 20 s: ${alone} alone, ${withIntruder} with an intruder reconnecting (${accepted} connections)`, held: withIntruder >= alone * 0.7 };
}

/** A slowloris request (a header byte a second) on an HTTP port: seconds until the server closes it (60 at most). */
export async function slowloris(url: string): Promise<Outcome> {
  const u = new URL(url);
  const started = Date.now();
  const secs = await new Promise<number>((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let timer: NodeJS.Timeout | undefined;
    s.on("connect", () => {
      s.write("GET /metrics HTTP/1.1\r\nHost: x\r\n");
      timer = setInterval(() => s.write("X"), 1000);
    });
    s.on("error", () => {});
    s.on("close", () => {
      clearInterval(timer);
      resolve((Date.now() - started) / 1000);
    });
    setTimeout(() => s.destroy(), 60_000);
  });
  return { result: secs >= 59.5 ? "held open for 60 s (gave up)" : `closed by the server after ${secs.toFixed(0)} s`, held: secs < 59.5 };
}

/** The README's provisioning curl, exactly as written, with the token and address filled in. */
export async function readmeCurl(t: Target): Promise<Outcome> {
  const line = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n").find((l) => l.startsWith("curl") && l.includes("/v1/devices") && l.includes('"board"'));
  if (!line) return { result: "no provisioning curl in README.md", held: false };
  const cmd = line.replace(/\s+#.*$/, "").replace("<token>", t.access.token).replace("http://127.0.0.1:8080", t.access.admin);
  const out = await new Promise<string>((resolve) => {
    const p = spawn("sh", ["-c", `${cmd} -s -o /dev/null -w '%{http_code}'`]);
    let s = "";
    p.stdout.on("data", (d) => (s += d));
    p.on("close", () => resolve(s));
  });
  return { result: `HTTP ${out}`, held: out === "201" };
}

/** Master-key rotation on a controller of its own, then a kill -9 and a restart with the key directory alone. */
export async function masterKeyRotation(how: "keyFile" | "generate"): Promise<Outcome> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-audit-mk-"));
  const token = randomBytes(32).toString("base64url");
  const sha = createHash("sha256").update(token).digest("hex");
  const [admin, bb, mq] = [await freePort(), await freePort(), await freePort()];
  const args = ["--import", "tsx", path.join(ROOT, "host/cli/main.ts"), "controller", "--data-dir", path.join(dir, "db"), "--master-key-dir", path.join(dir, "keys"),
    "--key-file", path.join(dir, "controller.key"), "--admin-port", String(admin), "--backbone-port", String(bb), "--mqtt-port", String(mq), "--admin-tokens", `a:${sha}`];
  const run = () => {
    const p = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err = (err + d).slice(-2000)));
    const ready = new Promise<boolean>((resolve) => {
      p.stdout.on("data", (d) => String(d).includes('"ready"') && resolve(true));
      p.on("exit", () => resolve(false));
    });
    return { p, ready, err: () => err };
  };
  const call = async (method: string, route: string, body?: unknown) => {
    const r = await httpRequest(`http://127.0.0.1:${admin}${route}`, method, { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) }, body ? JSON.stringify(body) : undefined);
    return r;
  };
  try {
    const first = run();
    if (!(await first.ready)) return { result: `controller did not start: ${first.err()}`, held: false };
    for (let i = 0; i < 5; i++) await call("POST", "/v1/devices", { board: "puckjs" });
    let body: unknown = { generate: true };
    if (how === "keyFile") {
      const f = path.join(dir, "new.key");
      fs.writeFileSync(f, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
      body = { keyFile: f };
    }
    const r = await call("POST", "/v1/master-key/rotate", body);
    if (how === "keyFile") fs.rmSync(path.join(dir, "new.key")); // an operator tidies the file away once the key is in
    first.p.kill("SIGKILL");
    await new Promise((res) => first.p.once("exit", res));
    const second = run();
    const ok = await second.ready;
    const why = ok ? "" : `: ${/"msg":"([^"]+)"|sesame: (.*)/.exec(second.err())?.slice(1).find(Boolean) ?? second.err().slice(-200)}`;
    second.p.kill("SIGKILL");
    return { result: `rotate answered ${r.status}; after kill -9 the controller ${ok ? "restarted" : `refused to start${why}`}`, held: r.status === 200 && ok };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

