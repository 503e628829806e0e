import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate, readMigrations } from "../../../host/controller/db/migrate";
import { openDb } from "../../../host/controller/db/open";
import { openPglite } from "../../../host/controller/db/pglite";
import { until } from "../../harness/until";
import { BACKENDS, freshDb, stopSharedPostgres } from "./backends";

after(stopSharedPostgres);

describe("controller database: one schema on PGlite and on a real Postgres", function () {
  this.timeout(120_000);
  const all = readMigrations();

  it("the migrations are numbered from 1 without gaps", () => {
    assert.deepEqual(all.map((m) => m.version), all.map((_, i) => i + 1));
  });

  for (const b of BACKENDS) {
    describe(b.name, () => {
      it("applies every migration once; applying again is a no-op", async () => {
        const db = await freshDb(b);
        try {
          const rows = await db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
          assert.deepEqual(rows.map((r) => r.version), all.map((m) => m.version));
          assert.deepEqual(await migrate(db), []);
          assert.deepEqual(await migrate(db), []);
          const n = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM schema_migrations");
          assert.equal(n[0].n, all.length);
          const tables = await db.query<{ t: string }>(
            "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1");
          assert.deepEqual(tables.map((r) => r.t), ["audit", "backbone_key", "command_counters", "commands", "controllers", "device_sessions", "devices", "gateway_leases", "master_keys", "mqtt_credentials", "outbox", "responder_keys", "routes", "schema_migrations", "sessions"]);
        } finally {
          await db.close();
        }
      });

      it("refuses to run when an applied migration has been edited", async () => {
        const db = await freshDb(b);
        try {
          await db.query("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1");
          await assert.rejects(migrate(db), /001_init\.sql changed after it was applied/);
        } finally {
          await db.close();
        }
      });

      it("the audit log is append-only in the database: UPDATE, DELETE and TRUNCATE raise", async () => {
        const db = await freshDb(b);
        try {
          await db.query("INSERT INTO audit (actor, action, outcome, detail) VALUES ('ops', 'device.list', 'ok', '{}')");
          await assert.rejects(db.query("UPDATE audit SET outcome = 'denied'"), /append-only: UPDATE refused/);
          await assert.rejects(db.query("DELETE FROM audit"), /append-only: DELETE refused/);
          await assert.rejects(db.query("TRUNCATE audit"), /append-only: TRUNCATE refused/);
          const rows = await db.query<{ actor: string; outcome: string }>("SELECT actor, outcome FROM audit");
          assert.deepEqual(rows, [{ actor: "ops", outcome: "ok" }]);
        } finally {
          await db.close();
        }
      });

      it("NOTIFY reaches every listener of its channel until it stops listening", async () => {
        const db = await freshDb(b);
        try {
          const got: string[] = [];
          const stop = await db.listen("sesame_test", (p) => got.push(p));
          await db.listen("sesame_other", (p) => got.push(`other:${p}`));
          await db.query("SELECT pg_notify('sesame_test', 'a'), pg_notify('sesame_other', 'b')");
          await until(() => got.length === 2, "two notifications");
          assert.deepEqual(got.sort(), ["a", "other:b"]);
          await stop();
          await db.query("SELECT pg_notify('sesame_test', 'c'), pg_notify('sesame_other', 'd')");
          await until(() => got.length === 3, "the other channel's");
          assert.deepEqual(got.slice(2), ["other:d"]);
          if (b.name === "postgres") {
            // The listening connection is cut (a server restart, a network cut): a new one listens again.
            await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()");
            await until(async () => {
              await db.query("SELECT pg_notify('sesame_other', 'e')");
              await new Promise((r) => setTimeout(r, 100));
              return got.includes("other:e");
            }, "a notification after the listening connection was replaced", 20_000);
          }
        } finally {
          await db.close();
        }
      });

      it("the schema refuses rows that break its rules", async () => {
        const db = await freshDb(b);
        try {
          await assert.rejects(db.query("INSERT INTO audit (action, outcome) VALUES ('x', 'maybe')"), /check constraint/);
          await assert.rejects(db.query("INSERT INTO devices (id, board, mode) VALUES ('NOT-HEX', 'puckjs', 'psk')"), /check constraint/);
          // A psk row without a wrapped key, a dh row without a public key.
          await assert.rejects(db.query("INSERT INTO devices (id, board, mode, pid) VALUES ('00112233', 'puckjs', 'psk', 'aa')"), /check constraint/);
          await assert.rejects(db.query("INSERT INTO devices (id, board, mode, kid) VALUES ('00112233', 'esp32-espruino', 'dh', '01020304')"), /check constraint/);
        } finally {
          await db.close();
        }
      });
    });
  }

  it("PGlite keeps its data in a directory across restarts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sesame-db-"));
    try {
      const a = await openDb({ dataDir: join(dir, "db") });
      await a.query("INSERT INTO audit (actor, action, outcome) VALUES ('ops', 'kept', 'ok')");
      await a.close();
      const b = await openDb({ dataDir: join(dir, "db") });
      const rows = await b.query<{ action: string }>("SELECT action FROM audit");
      assert.deepEqual(rows, [{ action: "kept" }]);
      assert.deepEqual(await migrate(b), []);
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("PGlite's planner statistics are kept up to date (it runs no autovacuum): a page of open sessions is an index scan, not a sort of all", async () => {
    const db = await openPglite(undefined, undefined, 100);
    try {
      await migrate(db);
      await db.exec(`INSERT INTO devices (id, board, mode, kid, public_key) SELECT lpad(to_hex(g), 16, '0'), 'puckjs', 'dh', lpad(to_hex(g), 8, '0'), decode(repeat('ab', 32), 'hex') FROM generate_series(1, 2000) g;
        INSERT INTO sessions (device_id, spi, gateway, closed_at) SELECT lpad(to_hex(g % 2000 + 1), 16, '0'), g, 'gw', CASE WHEN g % 4 = 0 THEN NULL ELSE now() END FROM generate_series(1, 40000) g`);
      // The query SessionLog.listOpen pages with.
      const plan = async () => (await db.query<Record<string, string>>("EXPLAIN SELECT id::text AS id FROM sessions WHERE closed_at IS NULL AND id < 30000::bigint ORDER BY sessions.id DESC LIMIT 2000")).map((r) => Object.values(r)[0]).join("\n");
      const tuples = async () => (await db.query<{ n: number }>("SELECT reltuples::int AS n FROM pg_class WHERE relname = 'sessions'"))[0].n;
      assert.match(await plan(), /Sort/, "with the statistics of an empty table");
      await until(async () => (await tuples()) === 40000, "the statistics refreshed by the timer");
      assert.doesNotMatch(await plan(), /Sort/);
      assert.match(await plan(), /Index (Only )?Scan Backward using sessions_open_id/);
    } finally {
      await db.close();
    }
  });

  it("a bad database URL is a clear error", async () => {
    await assert.rejects(openDb({ url: "mysql://x" }), /must start with postgres:\/\//);
    await assert.rejects(openDb({ url: "postgres://nobody:secret@127.0.0.1:1/none" }), (e: Error) => {
      assert.match(e.message, /cannot connect to postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/none/);
      assert.doesNotMatch(e.message, /secret/);
      return true;
    });
  });
});
