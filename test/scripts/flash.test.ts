// `npm run flash` through the real espruino CLI: a dry run writes what would be sent to a board, and that
// is checked by running it against a recording Storage (the CLI's atob() chunks are decoded by running
// them, not by pattern matching), then by booting the recorded Storage in the Espruino-shaped sandbox.
// The build goes to a directory of this test's own, so other builds of dist/ cannot race it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vm from "node:vm";
import type { BoardProfile } from "../../firmware/board";
import { BLE_NOTIFY_UUID, BLE_SERVICE_UUID } from "../../firmware/link/ble";
import { loadEspruino } from "../../host/sim/espruino-sandbox";
import { REPO_ROOT } from "../../scripts/build";
import { BOOT_CODE, BOOT_LOAD } from "../../scripts/lib/flash-espruino";
import { readBoardFiles } from "../../scripts/lib/espruino-modules";

const FLASH = path.join(REPO_ROOT, "scripts", "flash.ts");
const PSK_CONFIG = "mode=psk;order=I;id=00112233445566778899aabbccddeeff;psk=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f;period=60";

type Run = { code: number | null; stdout: string; stderr: string };

function runFlash(args: string[]): Run {
  const r = spawnSync(process.execPath, ["--import", "tsx", FLASH, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function profile(name: string): BoardProfile {
  return JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "boards", name + ".json"), "utf8")) as BoardProfile;
}

type StorageWrite = { name: string; data: string; offset: number; size: number | undefined };
type Upload = { writes: StorageWrite[]; loads: string[]; files: Record<string, string> };

/**
 * Runs an upload with nothing but what it may use on the board here: require("Storage").write, atob and
 * load. Any other statement throws. Files are assembled as Espruino does: created at `size` by the write
 * at offset 0, the later writes filling them in, which must cover them exactly, in order.
 */
function replayUpload(js: string): Upload {
  const writes: StorageWrite[] = [];
  const loads: string[] = [];
  const storage = {
    write: (name: string, data: string, offset?: number, size?: number) => {
      assert.equal(typeof data, "string", `Storage.write(${name}) data`);
      writes.push({ name, data, offset: offset ?? 0, size });
      return true;
    },
  };
  const context = vm.createContext({
    require: (m: string) => {
      if (m === "Storage") return storage;
      throw new Error(`the upload requires ${m}`);
    },
    atob: (b64: string) => Buffer.from(b64, "base64").toString("latin1"),
    load: (file: string) => loads.push(file),
  });
  vm.runInContext(js, context, { filename: "upload.js" });
  const files: Record<string, string> = {};
  const sizes: Record<string, number> = {};
  for (const w of writes) {
    if (w.offset === 0) {
      assert.ok(w.size !== undefined, `the first write of ${w.name} gives its size`);
      sizes[w.name] = w.size;
      files[w.name] = "";
    }
    assert.ok(w.name in files, `${w.name} written at ${w.offset} before it was created`);
    assert.equal(w.offset, files[w.name].length, `${w.name}: writes in order, without gaps`);
    files[w.name] += w.data;
    assert.ok(files[w.name].length <= sizes[w.name], `${w.name} written past its size`);
  }
  for (const name of Object.keys(files)) assert.equal(files[name].length, sizes[name], `${name} is written whole`);
  return { writes, loads, files };
}

/** Boots a board from recorded Storage, as Espruino does at start-up: runs .bootcde. */
function bootFromStorage(board: BoardProfile, files: Record<string, string>) {
  // First the part that loads the bundle, so that the board APIs boot() needs can be added to the realm.
  const sb = loadEspruino(BOOT_LOAD, { nativeCrypto: board.nativeCrypto, storage: files, filename: ".bootcde" });
  assert.equal(typeof sb.sesame.boot, "function", "sesame.boot after loading sesame.js from Storage");
  const services: unknown[] = [];
  const events: { [event: string]: () => void } = {};
  const notified: unknown[] = [];
  const intervals: { fn: () => void; ms: number }[] = [];
  Object.assign(sb.context, {
    NRF: {
      setServices: (svc: unknown) => services.push(svc),
      on: (event: string, cb: () => void) => (events[event] = cb),
      updateServices: (update: { [svc: string]: { [ch: string]: { value: unknown } } }) => notified.push(update[BLE_SERVICE_UUID][BLE_NOTIFY_UUID].value),
    },
    getTime: () => 1000 + intervals.length,
    // Recorded, not scheduled: the test drives the ticks itself.
    setInterval: (fn: () => void, ms: number) => intervals.push({ fn, ms }),
  });
  Object.assign((sb.context as { E: object }).E, { getTemperature: () => 21.5 });
  vm.runInContext(files[".bootcde"], sb.context, { filename: ".bootcde" });
  return { sb, services, events, notified, intervals };
}

describe("npm run flash (scripts/flash.ts, the real espruino CLI)", function () {
  this.timeout(300_000);
  let tmp: string;
  let buildDir: string;
  let configFile: string;
  let dryRun: Run;

  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-flash-test-"));
    buildDir = path.join(tmp, "dist");
    configFile = path.join(tmp, "puck1.cfg");
    fs.writeFileSync(configFile, PSK_CONFIG);
    dryRun = runFlash(["--board", "puckjs", "--config", configFile, "--dry-run", path.join(tmp, "upload.js"), "--build-dir", buildDir]);
  });

  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("builds, then writes the upload with progress lines and exit code 0", function () {
    assert.equal(dryRun.code, 0, dryRun.stdout + dryRun.stderr);
    assert.match(dryRun.stdout, /^building Puck\.js \(puckjs\) \.\.\.$/m);
    assert.match(dryRun.stdout, /^dry run: writing what the espruino CLI would send to /m);
    assert.ok(fs.existsSync(path.join(buildDir, "espruino", "puckjs.js")), "built into --build-dir");
    // The upload carries the device's key: owner-only.
    assert.equal(fs.statSync(path.join(tmp, "upload.js")).mode & 0o777, 0o600);
  });

  it("uploads the bundle and its modules byte for byte as Storage sesame.js, sesame.boot, sesame.hs, the config as sesame.cfg, then .bootcde, then restarts into it", function () {
    const upload = replayUpload(fs.readFileSync(path.join(tmp, "upload.js"), "latin1"));
    const built = readBoardFiles(path.join(buildDir, "espruino"), "puckjs");
    assert.deepEqual(Object.keys(upload.files).sort(), [".bootcde", "sesame.boot", "sesame.cfg", "sesame.hs", "sesame.js"]);
    for (const name of ["sesame.js", "sesame.boot", "sesame.hs"])
      assert.ok(upload.files[name] === built[name], `${name}: ${upload.files[name].length} bytes, built ${built[name].length}`);
    assert.equal(upload.files["sesame.cfg"], fs.readFileSync(configFile, "latin1"));
    assert.equal(upload.files[".bootcde"], BOOT_CODE);
    assert.ok(upload.writes.filter((w) => w.name === "sesame.js").length > 1, "the bundle goes in chunks");
    // The boot code after the files it loads, then a restart into it.
    assert.equal(upload.writes[upload.writes.length - 1].name, ".bootcde");
    assert.deepEqual(upload.loads, [".bootcde"]);
  });

  it("the uploaded boot code runs the bundle from Storage and starts the board (Espruino sandbox)", function () {
    const board = profile("puckjs");
    const { files } = replayUpload(fs.readFileSync(path.join(tmp, "upload.js"), "latin1"));
    const { sb, services, events, notified, intervals } = bootFromStorage(board, files);
    assert.deepEqual(sb.output, [], "boot() returned \"\": nothing printed");
    assert.equal(services.length, 1, "the BLE GATT service is set up");
    assert.ok(Object.keys(services[0] as object).includes(BLE_SERVICE_UUID), "with sesame's service UUID");
    assert.deepEqual(Object.keys(events).sort(), ["connect", "disconnect"]);
    assert.ok(intervals.length >= 1, "a timer drives the runtime");
    for (let i = 0; i < 5; i++) for (const t of intervals) t.fn();
    assert.equal(notified.length, 0, "nothing sent before a gateway connects");
    // A gateway connects: the board (order=I, initiator first) sends its handshake message over the GATT service.
    events.connect();
    for (let i = 0; i < 5; i++) for (const t of intervals) t.fn();
    assert.ok(notified.length >= 1, "the handshake's first message goes out as notifications");
    // .bootcde evaluated the bundle again: the running board is the global `sesame` it defined.
    const sesame = (sb.context as { sesame: { report(): string } }).sesame;
    assert.notEqual(sesame, sb.sesame);
    assert.match(sesame.report(), /^state=\w+;.*\bhandshakes=0\b/, "sesame.report() answers in the REPL (no link yet, no handshake)");
  });

  it("--no-config uploads no sesame.cfg, and the board says so at boot", function () {
    const out = path.join(tmp, "noconf.js");
    const r = runFlash(["--board", "puckjs", "--no-config", "--dry-run", out, "--build-dir", buildDir, "--no-build"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /building/);
    const { files } = replayUpload(fs.readFileSync(out, "latin1"));
    assert.deepEqual(Object.keys(files).sort(), [".bootcde", "sesame.boot", "sesame.hs", "sesame.js"]);
    const { sb } = bootFromStorage(profile("puckjs"), files);
    assert.equal(sb.output.length, 1);
    assert.match(sb.output[0], /^sesame: no configuration/);
  });

  it("drops the line break an editor leaves at the end of the config file", function () {
    const file = path.join(tmp, "edited.cfg");
    fs.writeFileSync(file, PSK_CONFIG + "\n");
    const out = path.join(tmp, "mdbt42q.js");
    const r = runFlash(["--board", "mdbt42q", "--config", file, "--dry-run", out, "--build-dir", buildDir, "--no-build"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const { files } = replayUpload(fs.readFileSync(out, "latin1"));
    assert.equal(files["sesame.cfg"], PSK_CONFIG);
    assert.ok(files["sesame.js"] === fs.readFileSync(path.join(buildDir, "espruino", "mdbt42q.js"), "latin1"));
  });

  it("a failed upload exits 1 and shows the CLI's output (which itself exits 0 when it cannot connect)", function () {
    const r = runFlash(["--board", "puckjs", "--config", configFile, "--port", "/dev/ttyNOSUCHPORT", "--build-dir", buildDir, "--no-build"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^uploading to \/dev\/ttyNOSUCHPORT with the espruino CLI \.\.\.$/m);
    assert.match(r.stdout + r.stderr, /espruino\| .*Unable to connect/);
    assert.match(r.stderr, /^flash: the espruino CLI could not connect to \/dev\/ttyNOSUCHPORT$/m);
  });

  describe("bad arguments: exit code 2, what is wrong and how to fix it, no stack trace", function () {
    const noStack = (r: Run) => assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /);

    it("an unknown board lists the known ones", function () {
      const r = runFlash(["--board", "puck", "--dry-run", path.join(tmp, "x.js"), "--no-config"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown board "puck"/);
      for (const f of fs.readdirSync(path.join(REPO_ROOT, "boards")).filter((n) => n.endsWith(".json")))
        assert.match(r.stderr, new RegExp(`^  ${f.replace(".json", "")} `, "m"));
      noStack(r);
    });

    it("a Lua board is refused with how Lua boards are loaded", function () {
      const r = runFlash(["--board", "esp32-nodemcu-lora", "--port", "/dev/ttyUSB0", "--no-config"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /NodeMCU Lua: the espruino CLI cannot load it/);
      assert.match(r.stderr, /nodemcu-tool/);
      assert.ok(r.stderr.includes('sesame = dofile("esp32-nodemcu-lora.lua")'));
      assert.ok(r.stderr.includes("sesame.boot{crypto=crypto,sodium=sodium,lora=lora}"));
      noStack(r);
    });

    it("neither --port nor --dry-run: the usage", function () {
      const r = runFlash(["--board", "puckjs", "--config", configFile]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /say where to flash: --port <addr> .* or --dry-run <out\.js>/);
      assert.match(r.stderr, /^usage: npm run flash -- --board <name>/m);
      assert.match(r.stderr, /--no-build/);
      noStack(r);
    });

    it("no --config and no --no-config", function () {
      const r = runFlash(["--board", "puckjs", "--port", "aa:bb:cc:dd:ee:ff"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /no configuration: give --config <file>.* or --no-config/);
      noStack(r);
    });

    it("a configuration for the other handshake mode than the board's bundle", function () {
      const file = path.join(tmp, "dh.cfg");
      fs.writeFileSync(file, "mode=dh;order=I;kid=01020304;secret=00;gateway=00");
      const r = runFlash(["--board", "puckjs", "--config", file, "--dry-run", path.join(tmp, "x.js")]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /is a dh configuration, but the puckjs bundle does psk only/);
      noStack(r);
    });

    it("an unknown option, and an option without its value", function () {
      const a = runFlash(["--board", "puckjs", "--prot", "x"]);
      assert.equal(a.code, 2);
      assert.match(a.stderr, /unknown option "--prot"/);
      const b = runFlash(["--board", "puckjs", "--port"]);
      assert.equal(b.code, 2);
      assert.match(b.stderr, /--port needs a value, e\.g\. --port aa:bb:cc:dd:ee:ff/);
      noStack(a);
      noStack(b);
    });
  });
});
