// What a terminate gateway's connection costs, by fleet size: the controller reads its registry and grants the
// gateway every device's keys (host/controller/grants.ts: KeyGrants.refresh, then grantGateway, each grant a
// KEYS message into the gateway's real backbone queue), and the gateway applies each grant to its key table
// (host/gateway/keytable.ts), as it does again after every reconnect. dh devices on the embedded PGlite.
// Until the table kept each device's kid, a grant, a withdrawal and a peer name walked every dh key: at 50,000
// devices the controller's grants took 17 s and the gateway's 25 s (48 s on a reconnect), with nothing else
// running on either.
import { KIND_KEYS } from "../../host/backbone/frame";
import { BackbonePeer, DEFAULT_PEER } from "../../host/backbone/peer";
import { KeyGrants } from "../../host/controller/grants";
import { MasterKey } from "../../host/controller/masterkey";
import { openControllerStore } from "../../host/controller/store";
import { KeyTable } from "../../host/gateway/keytable";
import { median, progress, table } from "../lib/measure";

const FLEETS = [1_000, 10_000, 100_000];
const ROUNDS = 3;
const GATEWAY = "0a0b0c0d";

const ms = (since: number) => performance.now() - since;

export async function benchGrants(): Promise<string> {
  const rows: (string | number)[][] = [];
  for (const n of FLEETS) {
    progress(`grants: ${n} devices`, 0, 1);
    const store = await openControllerStore({ db: {}, masterKeys: [MasterKey.generate()] });
    try {
      await store.db.exec(`INSERT INTO devices (id, board, mode, kid, public_key)
        SELECT lpad(to_hex(g), 16, '0'), 'esp32-espruino', 'dh', lpad(to_hex(g), 8, '0'), sha256(int4send(g)) FROM generate_series(1, ${n}) g`);
      const keys = new KeyTable();
      let peer = new BackbonePeer(DEFAULT_PEER);
      const sent: [string, string][] = [];
      let refused = 0;
      const grants = new KeyGrants({
        registry: store.registry, keys, responderGrant: "public=00;secret=00", gateways: () => [], ending: () => {},
        send: (_gw, device, grant) => {
          if (!peer.send({ kind: KIND_KEYS, device: Buffer.from(device), payload: Buffer.from(grant) })) return (refused++, false);
          sent.push([device, grant]);
          return true;
        },
      });
      const read: number[] = [], grant: number[] = [], apply: number[] = [], again: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        let t = performance.now();
        await grants.refresh(); // what the controller does when a terminate gateway connects, then:
        read.push(ms(t));
        peer = new BackbonePeer(DEFAULT_PEER);
        sent.length = 0;
        t = performance.now();
        grants.grantGateway(GATEWAY);
        grant.push(ms(t));
        const gateway = new KeyTable();
        for (const pass of [apply, again]) {
          t = performance.now();
          for (const [device, text] of sent) gateway.applyGrant(device, text);
          pass.push(ms(t));
        }
        if (gateway.size !== n) throw new Error(`grants bench: the gateway holds ${gateway.size} of ${n} devices`);
      }
      rows.push([n, median(read).toFixed(0), median(grant).toFixed(0), median(apply).toFixed(0), median(again).toFixed(0), refused]);
    } finally {
      await store.close();
    }
  }
  progress("grants", 1, 1);
  return table(["dh devices", "controller: registry read (ms)", "controller: grants queued (ms)", "gateway: grants applied (ms)", "again, on a reconnect (ms)", "grants refused (queue full)"], rows) +
    `\nMedians of ${ROUNDS} rounds. Registry read: KeyGrants.refresh on PGlite, 500 devices a query with a turn of the event loop between` +
    "\n(nothing changed after the first round, so nothing is granted by it). Grants queued: grantGateway, each grant a KEYS message in" +
    "\nthe gateway's backbone queue. Applied: each grant on the gateway's key table (withdraw, then set)." +
    "\nBefore the table kept each device's kid (one walk over every dh key per grant): 10,000 devices 551 ms queued, 1,123 ms applied" +
    "\n(2,177 ms again); 50,000 devices 17.0 s, 25.5 s and 47.8 s.";
}
