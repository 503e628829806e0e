import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deviceEndpoint, parseFields } from "../../../firmware/runtime/config";
import { hostProvider } from "../../../host/crypto/provider";
import { sourceOf as addressSource } from "../../../host/net/admission";
import { createAdminApi, DEFAULT_LIMITS, type AdminApi, type AdminOptions } from "../../../host/controller/admin";
import { DEFAULT_REFUSAL_LIMITS, SUMMARY_ACTION } from "../../../host/controller/audit-refusals";
import type { AuditRecord } from "../../../host/controller/audit";
import { hex } from "../../../host/controller/credentials";
import { MasterKey } from "../../../host/controller/masterkey";
import type { RevokeEvent } from "../../../host/controller/registry";
import { openControllerStore, type ControllerStore } from "../../../host/controller/store";
import { generateToken } from "../../../host/controller/tokens";
import { policy } from "../../harness/sessions";
import { BACKENDS, stopSharedPostgres } from "./backends";
import { assertHandshake } from "./handshake";

after(stopSharedPostgres);

type Reply = { status: number; headers: Headers; body: { error?: string; message?: string; [k: string]: unknown } };

for (const b of BACKENDS) {
  describe(`admin API over HTTP (${b.name})`, function () {
    this.timeout(120_000);
    const ops = generateToken(), auditor = generateToken();
    const master = MasterKey.generate();
    let store: ControllerStore;
    let api: AdminApi;
    let base: string;
    let keyDir: string;
    const logs: string[] = [];
    const revoked: RevokeEvent[] = [];

    async function start(over: Partial<AdminOptions> = {}): Promise<void> {
      if (api) await api.close();
      api = createAdminApi({
        store, tokens: [{ id: "ops", sha256: ops.sha256 }, { id: "auditor", sha256: auditor.sha256 }],
        log: (e) => void logs.push(JSON.stringify(e)),
        // Generous unless a test is about limits: these tests make many calls in a burst.
        limits: { perToken: { burst: 1000, perSecond: 1000 }, perAddressFailures: { burst: 100, perSecond: 100 }, refusals: { windowMs: 60_000, rowsPerSource: 1000, sources: 100 } },
        ...over,
      });
      const a = await api.listen(0);
      base = `http://127.0.0.1:${a.port}`;
    }

    async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
      const headers: Record<string, string> = { ...opts.headers };
      const token = opts.token === undefined ? ops.token : opts.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | undefined = opts.raw;
      if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json";
      const r = await fetch(base + path, { method, headers, body });
      return { status: r.status, headers: r.headers, body: (await r.json()) as Reply["body"] };
    }

    /** The audit rows written since `since` (an id), oldest first. */
    async function auditSince(since: number): Promise<AuditRecord[]> {
      return (await store.audit.list({ limit: 10_000 })).filter((r) => Number(r.id) > since).reverse();
    }
    async function lastAuditId(): Promise<number> {
      const l = await store.audit.list({ limit: 1 });
      return l.length === 0 ? 0 : Number(l[0].id);
    }

    before(async () => {
      keyDir = mkdtempSync(join(tmpdir(), "sesame-admin-keys-"));
      master.writeTo(join(keyDir, "first.key"));
      store = await openControllerStore({ db: await b.options(), masterKeys: { dir: keyDir, env: {} } });
      store.registry.onRevoke((e) => void revoked.push(e));
      await start();
    });
    after(async () => {
      await api.close();
      await store.close();
      rmSync(keyDir, { recursive: true, force: true });
    });

    it("missing, malformed and wrong tokens get 401 saying only missing/invalid; every attempt is audited", async () => {
      const since = await lastAuditId();
      const missing = await call("GET", "/v1/devices", { token: null });
      assert.equal(missing.status, 401);
      assert.deepEqual(missing.body, { error: "unauthorized", message: "missing bearer token" });
      assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="sesame"');
      const wrong = await call("GET", "/v1/devices", { token: ops.token.slice(0, -1) + (ops.token.endsWith("A") ? "B" : "A") });
      assert.deepEqual([wrong.status, wrong.body.message], [401, "invalid bearer token"]);
      const basic = await call("GET", "/v1/devices", { token: null, headers: { authorization: `Basic ${ops.token}` } });
      assert.deepEqual([basic.status, basic.body.message], [401, "invalid bearer token"]);
      // Unauthenticated callers learn nothing about routes either.
      const nowhere = await call("DELETE", "/v1/nowhere", { token: null });
      assert.equal(nowhere.status, 401);
      const rows = await auditSince(since);
      assert.deepEqual(rows.map((r) => [r.actor, r.action, r.outcome, r.detail.status, r.detail.reason]), [
        [null, "GET /v1/devices", "denied", 401, "missing bearer token"],
        [null, "GET /v1/devices", "denied", 401, "invalid bearer token"],
        [null, "GET /v1/devices", "denied", 401, "invalid bearer token"],
        [null, "DELETE /v1/nowhere", "denied", 401, "missing bearer token"],
      ]);
      assert.ok(rows.every((r) => r.detail.remote === "127.0.0.1" || r.detail.remote === "::ffff:127.0.0.1"));
    });

    it("provisions a device: 201 with a config the firmware accepts and completes a handshake with", async () => {
      const since = await lastAuditId();
      const r = await call("POST", "/v1/devices", { body: { board: "puckjs", name: "porch" } });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get("cache-control"), "no-store");
      const device = r.body.device as { id: string; mode: string; board: string; name: string };
      const config = r.body.config as string;
      assert.deepEqual([device.board, device.mode, device.name], ["puckjs", "psk", "porch"]);
      const ep = deviceEndpoint(hostProvider, policy(hostProvider), config, () => false);
      assert.equal(hex(ep.cfg.pskI!.id), device.id);
      const keys = (await store.registry.lookupPsk(device.id))!;
      assertHandshake(config, `mode=psk;order=I;devices=${device.id}:${hex(keys.current)}`);

      const dh = await call("POST", "/v1/devices", { body: { board: "esp32-nodemcu-lora" } });
      assert.equal(dh.status, 201);
      const f = parseFields(dh.body.config as string);
      assert.equal(f.mode, "dh"); // the board's handshake is the default mode
      const responder = await store.registry.responderKey();
      const peer = (await store.registry.lookupKid(f.kid))!;
      assertHandshake(dh.body.config as string, `mode=dh;order=${f.order};secret=${hex(responder.secret)};devices=${f.kid}:${hex(peer.publicKey)}`);

      const rows = await auditSince(since);
      assert.deepEqual(rows.map((x) => [x.actor, x.action, x.target, x.outcome, x.detail.status, x.detail.mode]), [
        ["ops", "device.provision", device.id, "ok", 201, "psk"],
        ["ops", "device.provision", (dh.body.device as { id: string }).id, "ok", 201, "dh"],
      ]);
      // No secret from the configs is in the audit log.
      const dump = JSON.stringify(rows);
      for (const secret of [parseFields(config).psk, f.secret, ops.token]) assert.ok(!dump.includes(secret));
    });

    it("malformed and invalid bodies get 400 (or 413/415) naming the field and what is allowed; all audited", async () => {
      const since = await lastAuditId();
      const cases: [unknown, number, RegExp][] = [
        [{ raw: "{board:" }, 400, /^body is not valid JSON/],
        [{ body: ["puckjs"] }, 400, /^body must be a JSON object$/],
        [{ body: {} }, 400, /^board: required; one of banglejs2, esp32-espruino, esp32-nodemcu-lora, mdbt42q, puckjs$/],
        [{ body: { board: 7 } }, 400, /^board: must be a string/],
        [{ body: { board: "pdp11" } }, 400, /^board: unknown board "pdp11"; one of banglejs2, esp32-espruino, esp32-nodemcu-lora, mdbt42q, puckjs$/],
        [{ body: { board: "puckjs", colour: "red" } }, 400, /^unknown field "colour"; allowed: board, mode, name$/],
        [{ body: { board: "puckjs", mode: "rsa" } }, 400, /^mode: must be "dh" or "psk"$/],
        [{ body: { board: "puckjs", mode: "dh" } }, 400, /^mode: puckjs can only be provisioned in psk \(its handshake is psk\)$/],
        [{ body: { board: "puckjs", name: "x".repeat(65) } }, 400, /^name: must be a string of at most 64 characters/],
        [{ raw: '{"board":"puckjs"}', headers: { "content-type": "text/plain" } }, 415, /Content-Type: application\/json/],
        [{ body: { board: "puckjs", name: "x".repeat(20_000) } }, 413, /^body too large: at most 16384 bytes$/],
      ];
      for (const [opts, status, message] of cases) {
        const r = await call("POST", "/v1/devices", opts as Parameters<typeof call>[2]);
        assert.equal(r.status, status, JSON.stringify(opts).slice(0, 80));
        assert.match(r.body.message!, message);
      }
      const rows = await auditSince(since);
      assert.equal(rows.length, cases.length);
      assert.ok(rows.every((r) => r.actor === "ops" && r.action === "device.provision" && r.outcome === "bad-request"));
      assert.deepEqual(rows.map((r) => r.detail.status), cases.map((c) => c[1]));
      assert.match(String(rows[4].detail.reason), /unknown board "pdp11"/);
    });

    it("unknown routes 404, wrong methods 405 with Allow, bad ids 400, unknown devices 404", async () => {
      const since = await lastAuditId();
      const nf = await call("GET", "/v1/gadgets");
      assert.deepEqual([nf.status, nf.body.message], [404, "no such route: /v1/gadgets"]);
      const wm = await call("DELETE", "/v1/devices");
      assert.equal(wm.status, 405);
      assert.equal(wm.headers.get("allow"), "POST, GET");
      assert.equal((await call("GET", "/v1/devices/NOT-HEX")).body.message, "device id: must be 8-64 lowercase hex characters");
      const missing = await call("GET", `/v1/devices/${"ab".repeat(16)}`);
      assert.deepEqual([missing.status, missing.body.message], [404, `device ${"ab".repeat(16)} not found`]);
      assert.equal((await call("POST", `/v1/devices/${"ab".repeat(16)}/revoke`)).status, 404);
      assert.equal((await call("GET", "/v1/devices?colour=red")).body.message, 'unknown query parameter "colour"; allowed: revoked, limit, after');
      assert.equal((await call("GET", "/v1/sessions?limit=0")).body.message, "limit: must be an integer from 1 to 10000");
      const rows = await auditSince(since);
      assert.deepEqual(rows.map((r) => [r.action, r.outcome, r.detail.status]), [
        ["GET /v1/gadgets", "not-found", 404],
        ["DELETE /v1/devices", "bad-request", 405],
        ["device.get", "bad-request", 400],
        ["device.get", "not-found", 404],
        ["device.revoke", "not-found", 404],
        ["device.list", "bad-request", 400],
        ["session.list", "bad-request", 400],
      ]);
    });

    it("lists, gets, rotates and revokes devices; revoking calls the listeners and closes sessions", async () => {
      const p = await call("POST", "/v1/devices", { body: { board: "mdbt42q" } });
      const id = (p.body.device as { id: string }).id;
      await store.sessions.recordOpen({ deviceId: id, spi: 0xabcdef, gateway: "gw-a" });
      const list = await call("GET", "/v1/devices");
      assert.ok((list.body.devices as { id: string }[]).some((d) => d.id === id));
      const sessions = await call("GET", `/v1/sessions?open=true&device=${id}`);
      assert.deepEqual((sessions.body.sessions as { spi: number }[]).map((s) => s.spi), [0xabcdef]);
      assert.equal(((await call("GET", `/v1/devices/${id}`)).body.device as { id: string }).id, id);
      const rot = await call("POST", `/v1/devices/${id}/rotate`);
      assert.equal(rot.status, 200);
      assert.notEqual(rot.body.config, p.body.config);
      assert.equal((await call("POST", `/v1/devices/${id}/revoke`, { body: { why: "lost" } })).body.message, 'unknown field "why": this call takes no fields');
      revoked.length = 0;
      const rev = await call("POST", `/v1/devices/${id}/revoke`);
      assert.equal(rev.status, 200);
      assert.notEqual((rev.body.device as { revokedAt: string | null }).revokedAt, null);
      assert.deepEqual(revoked, [{ deviceId: id, reason: "revoked" }]);
      assert.deepEqual((await call("GET", `/v1/sessions?open=true&device=${id}`)).body.sessions, []);
      assert.equal((await call("POST", `/v1/devices/${id}/rotate`)).status, 409);
      const live = (await call("GET", "/v1/devices?revoked=false")).body.devices as { id: string }[];
      const all = (await call("GET", "/v1/devices")).body.devices as { id: string }[];
      assert.ok(!live.some((d) => d.id === id) && all.some((d) => d.id === id));
    });

    it("lists devices a page at a time on request: limit, then after = the page before's next, until there is none", async () => {
      for (let i = 0; i < 5; i++) assert.equal((await call("POST", "/v1/devices", { body: { board: "puckjs" } })).status, 201);
      const whole = ((await call("GET", "/v1/devices")).body.devices as { id: string }[]).map((d) => d.id);
      assert.ok(whole.length >= 5);
      const paged: string[] = [];
      let next: string | undefined;
      let pages = 0;
      do {
        const r = await call("GET", `/v1/devices?limit=2${next === undefined ? "" : `&after=${next}`}`);
        assert.equal(r.status, 200);
        const devices = (r.body.devices as { id: string }[]).map((d) => d.id);
        assert.ok(devices.length <= 2);
        paged.push(...devices);
        next = r.body.next as string | undefined;
        pages++;
      } while (next !== undefined && pages < 100);
      assert.deepEqual(paged, whole, "every device once, in the registry's order");
      assert.equal(pages, Math.floor(whole.length / 2) + 1);
      const bad = await call("GET", "/v1/devices?limit=2&after=bm90LWEtY3Vyc29y");
      assert.equal(bad.status, 400);
      assert.match(bad.body.message as string, /after: not a cursor this API gave/);
      assert.match((await call("GET", "/v1/devices?limit=0")).body.message as string, /limit: must be an integer from 1 to 10000/);
    });

    it("rotates the master key through the API (generated, or from a key file) and keeps every key readable", async () => {
      const before = await store.registry.list({ includeRevoked: false });
      const psk = before.filter((d) => d.mode === "psk");
      const want = new Map<string, string>();
      for (const d of psk) want.set(d.id, hex((await store.registry.lookupPsk(d.id))!.current));
      const gen = await call("POST", "/v1/master-key/rotate", { body: { generate: true } });
      assert.equal(gen.status, 200);
      assert.equal(gen.body.version, 2);
      assert.match(gen.body.fingerprint as string, /^[0-9a-f]{32}$/);
      assert.ok(existsSync(gen.body.keyFile as string));
      assert.ok(!JSON.stringify(gen.body).includes("key\":\""));
      const fresh = MasterKey.generate();
      const file = join(keyDir, "incoming.bin");
      fresh.writeTo(file);
      const fromFile = await call("POST", "/v1/master-key/rotate", { body: { keyFile: file } });
      assert.deepEqual([fromFile.status, fromFile.body.version, fromFile.body.fingerprint], [200, 3, fresh.fingerprint]);
      assert.equal(fromFile.body.keyFile, join(keyDir, `master-${fresh.fingerprint}.key`));
      assert.deepEqual(store.keyring.versions(), [3]);
      for (const [id, k] of want) assert.equal(hex((await store.registry.lookupPsk(id))!.current), k);
      const again = await call("POST", "/v1/master-key/rotate", { body: { keyFile: file } });
      assert.equal(again.status, 409);
      assert.match(again.body.message!, /already version 3/);
      assert.equal((await call("POST", "/v1/master-key/rotate", { body: { keyFile: "relative.key" } })).body.message, "keyFile: must be an absolute path on the controller's machine");
      assert.match((await call("POST", "/v1/master-key/rotate", { body: { keyFile: join(keyDir, "none.key") } })).body.message!, /^keyFile: master key file .*none\.key: ENOENT$/);
      assert.match((await call("POST", "/v1/master-key/rotate", {})).body.message!, /give keyFile .* or "generate": true/);
      const rows = (await store.audit.list({ action: "master-key.rotate", limit: 10 })).reverse();
      assert.deepEqual(rows.slice(0, 2).map((r) => [r.target, r.outcome, r.detail.version]), [["v2", "ok", 2], ["v3", "ok", 3]]);
      // Every key file is in the directory, owner-only, and the directory alone opens the store.
      assert.deepEqual(readdirSync(keyDir).filter((n) => n.startsWith("master-")).sort(),
        [`master-${gen.body.fingerprint}.key`, `master-${fresh.fingerprint}.key`].sort());
      for (const n of readdirSync(keyDir)) assert.equal(statSync(join(keyDir, n)).mode & 0o777, 0o600, n);
    });

    it("a controller with no key directory refuses to rotate, saying how to get one", async () => {
      const bare = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
      const other = createAdminApi({ store: bare, tokens: [{ id: "ops", sha256: ops.sha256 }] });
      const url = `http://127.0.0.1:${(await other.listen(0)).port}/v1/master-key/rotate`;
      try {
        const file = join(keyDir, "elsewhere.bin");
        MasterKey.generate().writeTo(file);
        for (const [field, body] of [["generate", { generate: true }], ["keyFile", { keyFile: file }]] as const) {
          const r = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${ops.token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
          assert.equal(r.status, 400);
          assert.match(((await r.json()) as { message: string }).message,
            new RegExp(`^${field}: this controller has no master key directory .* Restart the controller with --master-key-dir <dir>`));
        }
        assert.deepEqual(bare.keyring.versions(), [1]);
      } finally {
        await other.close();
        await bare.close();
      }
    });

    it("rate limits: a token over its budget gets 429 with Retry-After; other tokens are unaffected", async () => {
      await start({ limits: { perToken: { burst: 3, perSecond: 0.01 }, perAddressFailures: { burst: 100, perSecond: 100 } } });
      const since = await lastAuditId();
      const got: number[] = [];
      for (let i = 0; i < 5; i++) got.push((await call("GET", "/v1/sessions")).status);
      assert.deepEqual(got, [200, 200, 200, 429, 429]);
      const limited = await call("GET", "/v1/sessions");
      assert.equal(limited.body.error, "rate-limited");
      assert.ok(Number(limited.headers.get("retry-after")) >= 1);
      assert.equal((await call("GET", "/v1/sessions", { token: auditor.token })).status, 200);
      const rows = await auditSince(since);
      assert.deepEqual(rows.map((r) => [r.actor, r.outcome]), [
        ["ops", "ok"], ["ops", "ok"], ["ops", "ok"], ["ops", "rate-limited"], ["ops", "rate-limited"], ["ops", "rate-limited"], ["auditor", "ok"],
      ]);
      await start();
    });

    it("rate limits: an address with too many failed attempts gets 429 for its bad tokens, while a valid token from it still works", async () => {
      await start({ limits: { perToken: { burst: 1000, perSecond: 1000 }, perAddressFailures: { burst: 3, perSecond: 0.01 } } });
      const since = await lastAuditId();
      const got: number[] = [];
      for (let i = 0; i < 4; i++) got.push((await call("GET", "/v1/devices", { token: "guess-" + i })).status);
      assert.deepEqual(got, [401, 401, 401, 429]);
      const limited = await call("GET", "/v1/devices", { token: null });
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get("retry-after")) >= 1);
      // The flood must not lock the real admin out of that address.
      assert.equal((await call("GET", "/v1/devices")).status, 200);
      assert.equal((await call("GET", "/v1/devices", { token: "guess-again" })).status, 429);
      const rows = await auditSince(since);
      assert.deepEqual(rows.map((r) => [r.actor, r.outcome, r.detail.status]), [
        [null, "denied", 401], [null, "denied", 401], [null, "denied", 401], [null, "rate-limited", 429], [null, "rate-limited", 429],
        ["ops", "ok", 200], [null, "rate-limited", 429],
      ]);
      await start();
    });

    /** Every refused call of `rows` (actor null): those with a row of their own, and those a summary counts. */
    function refusalsIn(rows: AuditRecord[]): { rows: number; own: number; counted: number } {
      const refused = rows.filter((r) => r.actor === null);
      const summaries = refused.filter((r) => r.action === SUMMARY_ACTION);
      return { rows: refused.length, own: refused.length - summaries.length, counted: summaries.reduce((n, r) => n + Number(r.detail.count), 0) };
    }

    it("10,000 bad requests from one address add at most 12 audit rows yet count every one; the valid token gets 200 throughout", async () => {
      const t = Date.now(); // a window that does not end during the flood, a bucket that does not refill
      await start({ now: () => t, limits: { perToken: { burst: 1000, perSecond: 1000 }, perAddressFailures: DEFAULT_LIMITS.perAddressFailures, refusals: DEFAULT_REFUSAL_LIMITS } });
      const since = await lastAuditId();
      const statuses: Record<number, number> = {};
      const valid: number[] = [];
      let next = 0;
      const flood = async () => {
        for (let i = next++; i < 10_000; i = next++) {
          const r = await fetch(`${base}/v1/devices`, { headers: { authorization: `Bearer guess-${i}` } });
          await r.arrayBuffer();
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          if (i % 500 === 0) valid.push((await call("GET", "/v1/sessions")).status);
        }
      };
      await Promise.all(Array.from({ length: 16 }, flood));
      await start(); // closing the API writes the open window's summaries
      assert.deepEqual(statuses, { 401: DEFAULT_LIMITS.perAddressFailures.burst, 429: 10_000 - DEFAULT_LIMITS.perAddressFailures.burst });
      assert.deepEqual(valid, Array(20).fill(200));
      const rows = await auditSince(since);
      const r = refusalsIn(rows);
      // rowsPerSource rows of their own, then one summary per outcome (denied, rate-limited).
      assert.ok(r.rows <= DEFAULT_REFUSAL_LIMITS.rowsPerSource + 2, `${r.rows} rows for the flood`);
      assert.equal(r.own + r.counted, 10_000, "every refused call is in a row or a summary's count");
      assert.equal(rows.filter((x) => x.actor === "ops").length, 20);
      const summary = rows.find((x) => x.action === SUMMARY_ACTION && x.outcome === "rate-limited")!;
      assert.equal(summary.detail.remote, "127.0.0.1");
      assert.deepEqual(summary.detail.actions, { "GET /v1/devices": summary.detail.count });
    });

    it("bad requests from 150 addresses add a bounded number of rows: sources beyond the tracked ones share one summary", async () => {
      const t = Date.now();
      const limits = { windowMs: 60_000, rowsPerSource: 5, sources: 20 };
      await start({ now: () => t, limits: { perToken: { burst: 1000, perSecond: 1000 }, perAddressFailures: { burst: 10, perSecond: 0.001 }, refusals: limits } });
      const since = await lastAuditId();
      const port = Number(new URL(base).port);
      const from = (localAddress: string) => new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: "127.0.0.1", port, path: "/v1/devices", localAddress, agent: false, headers: { authorization: "Bearer nope" } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        });
        req.on("error", reject);
        req.end();
      });
      const addresses = Array.from({ length: 150 }, (_, i) => `127.0.${1 + (i >> 6)}.${1 + (i & 63)}`);
      for (let round = 0; round < 30; round++) await Promise.all(addresses.map(from));
      assert.equal((await call("GET", "/v1/devices")).status, 200);
      await start();
      const rows = await auditSince(since);
      const r = refusalsIn(rows);
      const bound = limits.sources * (limits.rowsPerSource + 2) + 2;
      assert.ok(r.rows <= bound, `${r.rows} rows > ${bound}`);
      assert.equal(r.own + r.counted, 150 * 30);
      const other = rows.filter((x) => x.detail.remote === "other");
      assert.deepEqual(other.map((x) => [x.outcome, x.detail.addresses]).sort(), [["denied", 130], ["rate-limited", 130]]);
    });

    it("the audit log is readable through the API, and neither it nor the logs hold tokens or keys", async () => {
      const r = await call("GET", "/v1/audit?limit=500", { token: auditor.token });
      assert.equal(r.status, 200);
      const entries = r.body.entries as AuditRecord[];
      assert.ok(entries.length > 40);
      const dump = JSON.stringify(entries) + logs.join("\n");
      for (const secret of [ops.token, auditor.token, ops.sha256]) assert.ok(!dump.includes(secret), "a token leaked");
      assert.ok(!dump.includes('"config"'));
      // The database refuses to change history.
      await assert.rejects(store.db.query("DELETE FROM audit WHERE actor = 'ops'"), /append-only/);
    });
  });
}

describe("admin API: the source a failed attempt is charged to", () => {
  it("an IPv4 address (also IPv4-mapped) as it is, an IPv6 address by its /64", () => {
    assert.equal(addressSource("192.0.2.7"), "192.0.2.7");
    assert.equal(addressSource("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressSource("2001:db8:0:12:a:b:c:d"), "2001:db8:0:12::/64");
    assert.equal(addressSource("2001:0db8:0000:0012::1"), "2001:db8:0:12::/64");
    assert.equal(addressSource("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressSource("::1"), "0:0:0:0::/64");
    assert.equal(addressSource("unknown"), "unknown");
  });
});
