// Sessions that survive their gateway (host/gateway/session-handoff.ts, host/controller/session-store.ts): a
// board running the device runtime with a live session through a terminate gateway; the gateway process goes
// away (its memory with it) and another with its identity takes over, or a state too old is found. Real
// controller (PGlite), real backbone; the board's BLE link is a direct adapter (hardware is what is faked).
import assert from "node:assert/strict";
import { sessionRestore, STATE_CLOSED } from "../../../firmware/session/session";
import { memoryStorage } from "../../../firmware/runtime/facade";
import { SUITE_CONSTRAINED } from "../../../firmware/suite";
import { hostProvider } from "../../../host/crypto/provider";
import type { Gateway } from "../../../host/gateway/gateway";
import { BleBoard, type SimLink } from "../../harness/ble-board";
import { startStack } from "../../harness/stack";
import { until } from "../../harness/until";
import { recordNonce } from "../../harness/wiretap";

/** Short timeouts, as the cluster tests use: a board that lost its session would notice within seconds. */
const FAST = ";rto=400;tries=3;retry=1000";

/** A gateway as a board's BLE link sees it, every packet it sends to the board also given to `tap`. */
function bleOf(g: Gateway, tap: (p: Uint8Array) => void): SimLink & { pump(board: BleBoard): void } {
  return {
    attached: true,
    input: (link, packet) => g.input(link, packet),
    connected: (link) => g.connected(link),
    disconnected: () => {},
    takeOutput: () => g.takeOutput(),
    pump(board) {
      for (const o of g.takeOutput()) {
        if (o.link !== board.link) continue;
        tap(o.bytes);
        board.hear(o.bytes);
      }
    },
  };
}

/** Sends a reading and waits for its ACK; its id. */
async function delivered(b: BleBoard, pump: () => void, what: string): Promise<number> {
  const id = b.send(Buffer.from(what));
  assert.ok(id >= 0);
  await until(() => {
    pump();
    return b.acknowledged().includes(id);
  }, `reading ${what} acknowledged`, 15_000);
  return id;
}

for (const mode of ["psk", "dh"] as const) {
  describe(`session handoff (${mode} device)`, function () {
    this.timeout(60_000);

    for (const threads of [1, 2]) {
    it(`a restarted gateway resumes the session on the first record: no handshake, no (key, nonce) twice, keys stored wrapped${threads > 1 ? ` (device side over ${threads} worker threads)` : ""}`, async () => {
      const s = await startStack("terminate", undefined, {}, threads);
      const gateways: Gateway[] = [s.gateway];
      let board: BleBoard | undefined;
      try {
        const p = await s.controller.store.registry.provision({ board: mode === "psk" ? "puckjs" : "esp32-espruino", mode });
        const nonces: string[] = [];
        const tap = (b: Uint8Array) => {
          const n = recordNonce(b);
          if (n !== undefined && b.length > 8) nonces.push(n);
        };
        s.gateway.removeAllListeners("output");
        const first = bleOf(s.gateway, tap);
        await until(() => s.gateway.keys.has(p.device.id), "the device's keys at the gateway");
        board = new BleBoard("handoff", p.config + FAST + (mode === "dh" ? ";slice=64" : ""));
        board.attach(first);
        const b = board;
        for (let i = 0; i < 5; i++) await delivered(b, () => first.pump(b), `before ${i}`);
        const handshakes = b.rt.restarts;
        const session = b.rt.ep.session!;
        // (Nothing to wait for: the gateway acknowledged those readings only once the controller had granted
        // the sequence numbers it sealed them with, so the session is stored.)

        // The gateway process ends (its sessions with it); another with its identity starts.
        await s.gateway.close();
        const next = s.gatewayLike();
        gateways.push(next);
        next.start();
        const second = bleOf(next, tap);
        b.attach(second);
        for (let i = 0; i < 5; i++) await delivered(b, () => second.pump(b), `after ${i}`);

        assert.equal(b.rt.restarts, handshakes, "no new handshake");
        assert.equal(b.rt.ep.session, session, "the same session");
        assert.deepEqual(b.lost, [], "no reading given up");
        assert.equal(s.controller.handoff.stats.resumed, 1, "resumed from the controller's store");
        if (threads === 1) assert.equal(next.handoff?.stats.resumed, 1);
        assert.ok(nonces.length >= 10, `records sealed by both gateways (${nonces.length})`);
        assert.equal(new Set(nonces).size, nonces.length, `a (key, nonce) sealed twice: ${nonces.join(" ")}`);

        // The stored keys are wrapped: neither traffic secret appears in the row, and unwrapping gives them.
        const secrets = [session.out.secret, session.inb.secret].map((k) => Buffer.from(k).toString("hex"));
        const rows = await s.controller.store.db.query<{ id: string; w: Uint8Array; v: number }>("SELECT id, wrapped_state AS w, wrap_version AS v FROM device_sessions");
        assert.equal(rows.length, 1);
        const raw = Buffer.from(rows[0].w);
        for (const k of secrets) {
          assert.equal(raw.includes(Buffer.from(k, "hex")), false, "a traffic secret in the clear");
          assert.equal(raw.toString("latin1").includes(k), false, "a traffic secret in the clear (hex)");
        }
        const plain = Buffer.from(s.controller.store.keyring.unwrap("session", rows[0].id, { wrapped: rows[0].w, version: rows[0].v })).toString();
        const policy = { suite: SUITE_CONSTRAINED, p: hostProvider, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64, lateKeyMs: 30_000, seqBlock: 16, store: memoryStorage(), codec: undefined, compress: false };
        const stored = sessionRestore(policy, plain, Date.now())!;
        assert.equal(Buffer.from(stored.inb.secret).toString("hex"), secrets[0]);
      } finally {
        board?.stop();
        for (const g of gateways.slice(1)) await g.close();
        await s.close();
      }
    });
    }

    it("a state too old to resume: the device is told by an authenticated CLOSE and handshakes again at once", async () => {
      const s = await startStack("terminate", undefined, { sessionMaxAgeMs: 200 });
      const gateways: Gateway[] = [s.gateway];
      let board: BleBoard | undefined;
      try {
        const p = await s.controller.store.registry.provision({ board: mode === "psk" ? "puckjs" : "esp32-espruino", mode });
        s.gateway.removeAllListeners("output");
        const first = bleOf(s.gateway, () => {});
        await until(() => s.gateway.keys.has(p.device.id), "the device's keys at the gateway");
        board = new BleBoard("too-old", p.config + FAST + (mode === "dh" ? ";slice=64" : ""));
        board.attach(first);
        const b = board;
        await delivered(b, () => first.pump(b), "before");
        await s.gateway.close();
        await new Promise((r) => setTimeout(r, 400)); // older than the limit
        const next = s.gatewayLike();
        gateways.push(next);
        next.start();
        const second = bleOf(next, () => {});
        await until(() => next.keys.has(p.device.id), "the device's keys at the new gateway");
        const handshakes = b.rt.restarts;
        const old = b.rt.ep.session!, opened = old.received;
        // Told at once: the CLOSE closes the session (an authenticated record: it opened) and the board starts
        // its next handshake before its reading could have been given up.
        b.attach(second);
        await until(() => {
          second.pump(b);
          return b.rt.restarts > handshakes;
        }, "a new handshake", 15_000);
        assert.deepEqual(b.lost, [], "no reading given up before the new handshake");
        assert.equal(old.state, STATE_CLOSED, "the old session closed");
        assert.equal(old.received, opened + 1, "by a record that opened (an authenticated CLOSE, not the error packet)");
        assert.equal(next.handoff?.stats.closed, 1, "the gateway sealed a CLOSE from the stored state");
        await delivered(b, () => second.pump(b), "after");
        assert.deepEqual(b.lost, [], "no reading given up");
        assert.equal((await s.controller.store.db.query("SELECT 1 FROM device_sessions WHERE spi = $1", [old!.out.spi])).length, 0, "the old state is deleted");
      } finally {
        board?.stop();
        for (const g of gateways.slice(1)) await g.close();
        await s.close();
      }
    });
  });
}
