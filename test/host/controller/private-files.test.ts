// Files private whatever the umask: `sesame controller`, `sesame gateway` and `sesame provision --out` run as
// processes with umask 000, and every directory and file under their state directory must be 0700 / 0600:
// the embedded database (which PGlite unpacks 0666), the master keys (a rotated one too), the key files and
// a device configuration. State an older sesame left open to everyone is tightened at the next start, and
// the controller says so.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSesame } from "../../../host/cli/start";
import { generateToken } from "../../../host/controller/tokens";
import { Logger, memorySink } from "../../../host/telemetry/log";
import { startControllerProcess, type ControllerProcess } from "../../harness/controller-process";

const ROOT = path.resolve(import.meta.dirname, "../../..");

/** Runs `fn` (which starts a process) with the umask the process should inherit. */
function withUmask<T>(mask: number, fn: () => T): T {
  const old = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

/** Every entry under `dir` (and `dir` itself) whose mode is not 0700 for a directory or 0600 for a file. */
function notPrivate(dir: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o777) !== want) out.push(`${path.relative(dir, p) || "."} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
  };
  visit(dir);
  return out;
}

function count(dir: string): number {
  return fs.readdirSync(dir, { recursive: true }).length + 1;
}

/** `sesame gateway` (umask 000) with its key file in the state directory: started, then stopped. */
async function runGateway(ctl: ControllerProcess, state: string): Promise<void> {
  const gw = withUmask(0, () => spawnSesame(["gateway", "--controller", `127.0.0.1:${ctl.ready.backbone}`, "--controller-key", String(ctl.ready.public),
    "--key-file", path.join(state, "gateway.key"), "--sim-port", "off"], "gateway", Logger.create({ level: "silent", stream: memorySink() })));
  await gw.ready;
  gw.proc.kill("SIGTERM");
  await new Promise((r) => gw.proc.once("exit", r));
}

describe("sesame processes under umask 000 write only private files", function () {
  this.timeout(300_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-umask-"));
  const state = path.join(tmp, "state"); // made by the controller itself
  const token = generateToken();
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("controller, gateway, a rotated master key and a provisioned configuration: every directory 0700, every file 0600", async () => {
    const ctl = await withUmask(0, () => startControllerProcess({ dir: state, tokens: `t:${token.sha256}` }));
    try {
      assert.match(fs.readFileSync(`/proc/${ctl.proc.pid}/status`, "utf8"), /^Umask:\s+0000$/m);
      await runGateway(ctl, state);
      const rotated = await fetch(`${ctl.admin}/v1/master-key/rotate`, {
        method: "POST", headers: { authorization: `Bearer ${token.token}`, "content-type": "application/json" }, body: JSON.stringify({ generate: true }),
      });
      assert.equal(rotated.status, 200, await rotated.clone().text());
      const out = path.join(state, "puck.cfg");
      const provision = withUmask(0, () => spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "host/cli/main.ts"), "provision",
        "--admin", ctl.admin, "--token", token.token, "--board", "puckjs", "--out", out], { encoding: "utf8" }));
      assert.equal(provision.status, 0, provision.stderr);
      assert.match(fs.readFileSync(out, "utf8"), /^mode=psk;/);
    } finally {
      assert.equal(await ctl.stop(), 0);
    }
    const entries = count(state);
    assert.ok(entries > 900, `${entries} entries: the database, keys and key files are all there`);
    assert.deepEqual(notPrivate(state), []);
    for (const f of ["controller.key", "gateway.key", "puck.cfg"]) assert.ok(fs.existsSync(path.join(state, f)), f);
    assert.equal(fs.readdirSync(path.join(state, "keys")).filter((n) => n.endsWith(".key")).length, 2);
  });

  it("state an older sesame left open to everyone is tightened at start, with a warning naming it", async () => {
    const loosen = (p: string) => {
      const st = fs.statSync(p);
      fs.chmodSync(p, st.isDirectory() ? 0o777 : 0o666);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) loosen(path.join(p, n));
    };
    fs.rmSync(path.join(state, "puck.cfg")); // the operator's file, not sesame's state
    loosen(state);
    const ctl = await withUmask(0, () => startControllerProcess({ dir: state, tokens: `t:${token.sha256}` }));
    assert.equal(await ctl.stop(), 0);
    await runGateway(ctl, state);
    // The state directory itself is the operator's to choose (it may be any existing directory): the controller
    // tightens what it owns under it.
    assert.deepEqual(notPrivate(state), [". 777"]);
    const warned = ctl.records.filter((r) => r.level === "warn").map((r) => [r.msg.split(";")[0], r.fields?.file ?? r.fields?.dir]);
    assert.deepEqual(warned.filter(([m]) => m === "database files were open to other users"), [["database files were open to other users", path.join(state, "db")]]);
    assert.ok(warned.some(([m, f]) => m === "key file was open to other users" && f === path.join(state, "controller.key")));
    assert.equal(warned.filter(([m]) => m === "master key file or directory was open to other users").length, 3); // the directory and its two keys
  });
});
