// What the readings outbox costs (`npm run bench outbox`), on the embedded PGlite that `npm start` uses (a
// data directory) and on a real Postgres (started here, as the tests do, when this machine has one):
//   - the outbox's own statements per reading, by batch size: one INSERT ... ON CONFLICT DO NOTHING of the
//     batch and one UPDATE marking it published, as a controller runs them;
//   - readings per second through a whole controller (in this process: backbone server, outbox, embedded
//     MQTT broker), fed by a gateway's backbone client as fast as it acknowledges: from the first UPLINK
//     sent to the last one acknowledged and published.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KIND_UPLINK } from "../../host/backbone/frame";
import { backboneKeyPair } from "../../host/backbone/handshake";
import { BackboneClient } from "../../host/backbone/link";
import { Outbox, type Reading } from "../../host/controller/cluster/outbox";
import { Controller } from "../../host/controller/controller";
import { openDb, type DbOptions } from "../../host/controller/db/open";
import { MasterKey } from "../../host/controller/masterkey";
import { silentLogger } from "../../host/telemetry/log";
import { startPostgres } from "../../test/harness/postgres";
import { fmt, median, table } from "../lib/measure";

const ROUNDS = Number(process.env.SESAME_BENCH_ROUNDS ?? 3);
/** Readings per end-to-end round, from this many devices. */
const READINGS = Number(process.env.SESAME_OUTBOX_READINGS ?? 20_000);
const DEVICES = 100;

const reading = (device: string, id: number): Reading => ({ device, id, gateway: "0a0b0c0d", mode: "terminate", body: randomBytes(20), receivedMs: Date.now() });

/** µs per reading of insert + mark, at batch size b, median of ROUNDS. */
async function statements(db: DbOptions, b: number): Promise<number> {
  const d = await openDb(db);
  try {
    const o = new Outbox(d, "bench", 60_000);
    const per: number[] = [];
    let next = 0;
    for (let r = 0; r < ROUNDS + 1; r++) {
      const batches = Math.max(3, Math.ceil(2000 / b));
      const start = process.hrtime.bigint();
      for (let k = 0; k < batches; k++) {
        const rs = Array.from({ length: b }, () => reading(`dev${next % DEVICES}`, next++));
        await o.insert(rs);
        await o.published(rs);
      }
      if (r > 0) per.push(Number(process.hrtime.bigint() - start) / 1e3 / (batches * b)); // the first round warms up
    }
    return median(per);
  } finally {
    await d.close();
  }
}

/** Readings per second through a controller on `db`: to the last acknowledged, and to the last published; medians of ROUNDS. */
async function endToEnd(db: () => Promise<DbOptions>): Promise<[number, number]> {
  const rates: number[] = [], acks: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const ctlKeys = backboneKeyPair(), gw = { kid: randomBytes(4), keys: backboneKeyPair() };
    const c = new Controller({
      store: { db: await db(), masterKeys: [MasterKey.generate()] }, keys: ctlKeys, gateways: [{ kid: Buffer.from(gw.kid).toString("hex"), publicKey: gw.keys.S, mode: "terminate" }],
      backbone: { port: 0 }, admin: { port: 0, tokens: [] }, mqtt: { kind: "embedded", port: 0 }, log: silentLogger(),
    });
    const ports = await c.start();
    const client = new BackboneClient({ host: "127.0.0.1", port: ports.backbone, identity: gw, controllerKey: ctlKeys.S }).start();
    try {
      let acked = 0;
      client.on("acked", (base: number) => (acked = base));
      await new Promise<void>((resolve) => client.once("connected", resolve));
      const before = c.delivery.stats.published;
      const start = process.hrtime.bigint();
      for (let i = 0; i < READINGS; i++) {
        const payload = Buffer.alloc(9 + 20);
        payload.writeUIntBE(i, 0, 3);
        payload.writeUIntBE(Date.now(), 3, 6);
        client.send({ kind: KIND_UPLINK, device: deviceOf(i), payload });
      }
      const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
      while (acked < READINGS) await new Promise((res) => setTimeout(res, 2));
      acks.push(READINGS / seconds());
      while (c.delivery.stats.published - before < READINGS) await new Promise((res) => setTimeout(res, 2));
      rates.push(READINGS / seconds());
    } finally {
      await client.close();
      await c.stop();
    }
  }
  return [median(acks), median(rates)];
}

const devices = Array.from({ length: DEVICES }, () => randomBytes(16));
/** The device (a psk id) reading i comes from. */
const deviceOf = (i: number): Uint8Array => devices[i % DEVICES];

export async function benchOutbox(): Promise<string> {
  const dirs: string[] = [];
  const pglite = async (): Promise<DbOptions> => {
    const d = mkdtempSync(join(tmpdir(), "sesame-bench-pglite-"));
    dirs.push(d);
    return { dataDir: d };
  };
  let pg: Awaited<ReturnType<typeof startPostgres>> | undefined;
  let n = 0;
  try {
    pg = await startPostgres();
  } catch (e) {
    pg = undefined;
    process.stderr.write(`outbox bench: no Postgres here (${(e as Error).message.split(":")[0]}); PGlite only\n`);
  }
  const postgres = async (): Promise<DbOptions> => ({ url: await pg!.createDatabase(`bench${++n}`) });
  try {
    const backends: [string, () => Promise<DbOptions>][] = [["PGlite (data directory)", pglite], ...(pg ? [["Postgres (local, fsync off)", postgres] as [string, () => Promise<DbOptions>]] : [])];
    const rows: (string | number)[][] = [];
    for (const [name, db] of backends) {
      const per = [];
      for (const b of [1, 10, 100, 1000]) per.push((await statements(await db(), b)).toFixed(1));
      const [acked, published] = await endToEnd(db);
      rows.push([name, ...per, fmt(acked), fmt(published)]);
    }
    return table(["backend", "µs/reading @1", "@10", "@100", "@1000", "acknowledged/s", "published/s"], rows) +
      `\n\nµs/reading: one INSERT ... ON CONFLICT DO NOTHING of the batch and one UPDATE marking it published, per reading, by batch size.` +
      `\nacknowledged/s, published/s: ${READINGS} readings from ${DEVICES} devices sent at once through one controller (backbone in, outbox,` +
      `\nembedded MQTT broker): readings over the time to the last one acknowledged to the gateway, and to the last one published.`;
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await pg?.stop();
  }
}
