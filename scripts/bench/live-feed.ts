// What the console's live feed costs the controller: per reading (where it was heard, the last readings,
// the ids never received), next to the copy of the reading the MQTT publish already makes; and the fleet
// table computed for streams, by fleet size.
import { request, type ServerResponse } from "node:http";
import { createServer } from "node:http";
import { MemoryDeviceStatus } from "../../host/controller/device-status";
import { FLEET_PAGE, LiveFeed } from "../../host/controller/live/feed";
import { EventStreams } from "../../host/controller/live/streams";
import { MasterKey } from "../../host/controller/masterkey";
import { openControllerStore } from "../../host/controller/store";
import { restamp } from "../../test/harness/restamp";
import { fmt, median, rate, table } from "../lib/measure";

const ADMIN = { actor: "bench", devices: "all" as const, actions: "all" as const };

export async function benchLiveFeed(): Promise<string> {
  const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
  const status = new MemoryDeviceStatus();
  const feed = new LiveFeed({ store, status, gateways: () => [], queues: () => ({}) }, new EventStreams());
  const devices = Array.from({ length: 10_000 }, (_, i) => i.toString(16).padStart(16, "0"));
  const body = new Uint8Array(12);
  let n = 0;
  const copy = rate(() => void Uint8Array.from(body));
  const reading = () => {
    const d = devices[n % devices.length], now = Date.now();
    status.heard(d, { gateway: "0a0b0c0d", peer: d }, now);
    feed.reading(d, Math.floor(n++ / devices.length), body, "0a0b0c0d", now); // each device numbers its readings 0, 1, 2...
  };
  const quiet = rate(reading);
  // One console following one device: the others' readings cost a check each.
  const server = createServer((_, res) => feed.streams.start(ADMIN, { device: devices[0] }, res as ServerResponse, []));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const client = request({ port: (server.address() as { port: number }).port, host: "127.0.0.1" }, (res) => res.resume());
  client.on("error", () => {}); // ended by feed.close() below
  client.end();
  while (feed.streams.size === 0) await new Promise((r) => setTimeout(r, 5));
  const watched = rate(reading);
  feed.close();
  client.destroy();
  server.close();
  const rows: (string | number)[][] = [
    ["copy of a 12-byte reading (what publish already does)", fmt(copy.opsPerSec), (1e9 / copy.opsPerSec).toFixed(0)],
    ["feed + status, no console open", fmt(quiet.opsPerSec), (1e9 / quiet.opsPerSec).toFixed(0)],
    ["feed + status, a console following one device", fmt(watched.opsPerSec), (1e9 / watched.opsPerSec).toFixed(0)],
  ];
  // The fleet table a stream gets first and every tick: registry and open sessions read, rows made. The first
  // read is whole; later ones take the registry's changed rows and the open sessions' ids (the rows aged an
  // hour first, as a fleet provisioned earlier: what changed in the last minute is read again on purpose).
  const sizes: (string | number)[][] = [];
  let spi = 1;
  for (const count of [100, 1000, 10_000]) {
    for (let have = (await store.registry.list()).length; have < count; have++) {
      const id = (await store.registry.provision({ board: "puckjs" })).device.id;
      await store.sessions.recordOpen({ deviceId: id, spi: spi++, gateway: "0a0b0c0d" });
    }
    await restamp(store.db, "UPDATE devices SET changed_at = now() - interval '1 hour'");
    const first: number[] = [], later: number[] = [];
    let bytes = 0, page = 0;
    for (let i = 0; i < 3; i++) {
      let t = Date.now();
      const f = new LiveFeed({ store, status, gateways: () => [], queues: () => ({}), now: () => t }); // a new one reads the database
      for (let k = 0; k < 4; k++) {
        const s = process.hrtime.bigint();
        bytes = JSON.stringify(await f.fleet(ADMIN)).length;
        (k === 0 ? first : later).push(Number(process.hrtime.bigint() - s) / 1e6);
        t += 5000; // the feed reads again after 5 s
      }
      page = JSON.stringify(await f.fleet(ADMIN, { q: "", from: 0, size: FLEET_PAGE })).length;
      f.close();
    }
    sizes.push([count, median(first).toFixed(1), median(later).toFixed(1), (bytes / 1024).toFixed(0), (page / 1024).toFixed(0)]);
  }
  await store.close();
  return `${table(["per reading", "per second", "ns each"], rows)}\n\n${table(["devices (a session each)", "fleet table, first read (ms)", "every 5 s after (ms)", "as JSON (KiB)", `a stream's first page, ${FLEET_PAGE} rows (KiB)`], sizes)}\n` +
    "While a stream is open, each second the rows of the devices the feed was told of, and a tenth of the others in turn, are made" +
    "\nagain for all streams together; the database is read again every 5 s or after a change: the registry's rows changed since" +
    "\n(whole every 10 minutes), the open sessions' ids. A stream opens with a page of the table and the fleet's numbers, and is" +
    "\nsent the rows of its page that changed (GET /v1/fleet without q, from or size gives every row).";
}
