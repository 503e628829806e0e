import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Logger, levelFromEnv, memorySink } from "../../../host/telemetry/log";
import { isSecretName, redact } from "../../../host/telemetry/redact";

/** Every way a byte string could show up in a line: hex, base64, base64url, latin1/utf8 text, decimal lists. */
function forms(b: Uint8Array): string[] {
  const buf = Buffer.from(b);
  return [buf.toString("hex"), buf.toString("base64"), buf.toString("base64url"), buf.toString("hex").toUpperCase(), [...b].join(","), JSON.stringify(buf.toJSON().data)];
}

describe("structured JSON logs", () => {
  it("writes one JSON object per line: time, level, component, msg, fields", () => {
    const sink = memorySink();
    const log = Logger.create({ stream: sink, level: "info", component: "controller", now: () => 0 });
    log.info("device provisioned", { device: "puck-1", kid: "a1b2" });
    log.error("no fields");
    assert.equal(sink.lines.length, 2);
    assert.ok(sink.lines.every((l) => l.endsWith("\n") && !l.slice(0, -1).includes("\n")));
    assert.deepEqual(sink.records()[0], { time: "1970-01-01T00:00:00.000Z", level: "info", component: "controller", msg: "device provisioned", fields: { device: "puck-1", kid: "a1b2" } });
    assert.deepEqual(sink.records()[1], { time: "1970-01-01T00:00:00.000Z", level: "error", component: "controller", msg: "no fields" });
  });

  it("redacts keys, secrets and payloads by field name, and never prints bytes", () => {
    const sink = memorySink();
    const log = Logger.create({ stream: sink, level: "debug", component: "keys" });
    const masterKey = randomBytes(32), psk = randomBytes(16), plaintext = randomBytes(20), innocent = randomBytes(24);
    const tokenText = "tok_" + randomBytes(12).toString("hex");
    const err = new Error("connect to mqtt://ctl:s3cr3t-pass@broker:1883 failed");
    log.warn("rotation", {
      masterKey, psk: Buffer.from(psk).toString("hex"), adminToken: tokenText, password: "hunter2",
      session: { sessionKeys: { k0: masterKey }, kid: "0a0b", keyEpoch: 3, payloadBytes: 20 },
      payload: plaintext, data: innocent, frames: [innocent, { plaintext: "attack at dawn" }],
      url: "mqtts://ctl:s3cr3t-pass@broker:8883", error: err,
    });
    const line = sink.lines.join("");
    for (const secret of [...forms(masterKey), ...forms(psk), ...forms(plaintext), ...forms(innocent), tokenText, "hunter2", "attack at dawn", "s3cr3t-pass"]) {
      assert.ok(!line.includes(secret), `leaked ${secret}`);
    }
    const f = sink.records()[0].fields as Record<string, any>;
    assert.equal(f.masterKey, "[redacted]");
    assert.equal(f.psk, "[redacted]");
    assert.equal(f.adminToken, "[redacted]");
    assert.equal(f.password, "[redacted]");
    assert.equal(f.payload, "[redacted]");
    assert.deepEqual(f.session, { sessionKeys: "[redacted]", kid: "0a0b", keyEpoch: 3, payloadBytes: 20 });
    assert.equal(f.data, "[24 bytes]");
    assert.deepEqual(f.frames, ["[24 bytes]", { plaintext: "[redacted]" }]);
    assert.equal(f.url, "mqtts://ctl:[redacted]@broker:8883");
    assert.deepEqual(f.error, { name: "Error", message: "connect to mqtt://ctl:[redacted]@broker:1883 failed" });
  });

  it("bound fields of child loggers are redacted too", () => {
    const sink = memorySink();
    const key = randomBytes(16);
    const root = Logger.create({ stream: sink, level: "info", component: "controller" });
    const child = root.child("gateway", { gateway: "gw-1", sessionKey: key, raw: key });
    child.info("session opened", { device: "d1" });
    assert.deepEqual(sink.records()[0], { ...sink.records()[0], component: "gateway", fields: { gateway: "gw-1", sessionKey: "[redacted]", raw: "[16 bytes]", device: "d1" } });
    for (const s of forms(key)) assert.ok(!sink.lines[0].includes(s));
  });

  it("filters by level, shared by a logger and its children", () => {
    const sink = memorySink();
    const log = Logger.create({ stream: sink, level: "warn" });
    const child = log.child("x");
    child.debug("d");
    child.info("i");
    child.warn("w");
    log.error("e");
    assert.deepEqual(sink.records().map((r) => r.level), ["warn", "error"]);
    assert.equal(child.enabled("info"), false);
    log.level = "debug";
    assert.equal(child.enabled("debug"), true);
    assert.throws(() => (log.level = "loud" as "debug"), /must be one of/);
    log.level = "silent";
    log.error("nothing");
    assert.equal(sink.lines.length, 2);
  });

  it("takes its level from SESAME_LOG_LEVEL, and says so when the value names no level", () => {
    assert.deepEqual(levelFromEnv({ SESAME_LOG_LEVEL: "DEBUG" }), { level: "debug" });
    assert.deepEqual(levelFromEnv({}), { level: "info" });
    const bad = levelFromEnv({ SESAME_LOG_LEVEL: "verbose" });
    assert.equal(bad.level, "info");
    assert.match(bad.problem!, /SESAME_LOG_LEVEL="verbose" is not a level; use one of debug, info, warn, error, silent/);
    const saved = process.env.SESAME_LOG_LEVEL;
    try {
      process.env.SESAME_LOG_LEVEL = "error";
      const sink = memorySink();
      const log = Logger.create({ stream: sink });
      log.warn("hidden");
      log.error("shown");
      assert.deepEqual(sink.records().map((r) => r.msg), ["shown"]);
      process.env.SESAME_LOG_LEVEL = "verbose";
      const sink2 = memorySink();
      Logger.create({ stream: sink2 }).info("hello");
      assert.deepEqual(sink2.records().map((r) => [r.level, r.msg]), [["warn", "log level from environment ignored"], ["info", "hello"]]);
    } finally {
      if (saved === undefined) delete process.env.SESAME_LOG_LEVEL;
      else process.env.SESAME_LOG_LEVEL = saved;
    }
  });

  it("survives hostile fields and a broken stream", () => {
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const hostile = { get boom(): never { throw new Error("getter"); } };
    const deep = { a: { b: { c: { d: { e: { f: { g: { h: 1 } } } } } } } };
    const sink = memorySink();
    const log = Logger.create({ stream: sink, level: "info" });
    log.info("odd", { cyclic, hostile, deep, big: 10n, nan: NaN, when: new Date(0), fn: () => 1, long: "x".repeat(5000), many: Array.from({ length: 100 }, (_, i) => i) });
    const f = sink.records()[0].fields as Record<string, any>;
    assert.deepEqual(f.cyclic, { name: "loop", self: "[circular]" });
    assert.equal(f.hostile, "[unreadable]");
    assert.equal(JSON.stringify(f.deep).includes("[too deep]"), true);
    assert.equal(f.big, "10");
    assert.equal(f.nan, "NaN");
    assert.equal(f.when, "1970-01-01T00:00:00.000Z");
    assert.equal(f.fn, "[function]");
    assert.ok(f.long.length < 2100 && f.long.endsWith("[5000 chars]"));
    assert.equal(f.many.length, 33);
    const broken = Logger.create({ level: "info", stream: { write: () => { throw new Error("EPIPE"); } } });
    assert.doesNotThrow(() => broken.error("still fine"));
  });

  it("names: secrets by pattern, identifiers and sizes allowed", () => {
    for (const n of ["key", "masterKey", "PSK", "sessionSecret", "authToken", "password", "plaintext", "payload", "Authorization", "privateKey"]) assert.ok(isSecretName(n), n);
    for (const n of ["kid", "keyId", "key_id", "keyEpoch", "payloadBytes", "payload_size", "device", "seq"]) assert.ok(!isSecretName(n), n);
    assert.equal(redact(new Uint8Array(5).buffer), "[5 bytes]");
    assert.equal(redact(new DataView(new ArrayBuffer(3))), "[3 bytes]");
    assert.deepEqual(redact(new Map<string, unknown>([["token", "x"], ["n", 1]])), { token: "[redacted]", n: 1 });
  });
});
