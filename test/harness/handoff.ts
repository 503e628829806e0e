// A terminate gateway's side of the session handoff (docs/PROTOCOL.md 3.8), as host/controller/session-store.ts
// hears it, for tests of the store: sessions reported and fetched as gateways would, awaited one at a time.
import { randomBytes } from "node:crypto";
import { SessionStore } from "../../host/controller/session-store";
import type { ControllerStore } from "../../host/controller/store";
import { silentLogger } from "../../host/telemetry/log";

const secret = () => randomBytes(32).toString("hex");

/** The store's handoff as gateway `gateway` sees it (psk devices: a session's peer is its device id). */
export function handoffOf(store: ControllerStore, maxAgeMs?: number) {
  const sessions = new SessionStore(store.db, store.keyring, (peer) => peer, silentLogger(), maxAgeMs);
  const ask = (run: (answer: (spi: number, text: string) => void, done: () => void) => void) =>
    new Promise<string>((resolve) => {
      let a = "(no answer)";
      run((_, text) => (a = text), () => resolve(a));
    });
  return {
    sessions,
    /** A session's saved form (sessionSave's 9 fields) with fresh secrets, sending key index `index`. */
    saved: (device: string, spi: number, index = 0) => [secret(), device, "r", secret(), String(index), String(spi + 5000), secret(), "0", String(spi)].join(","),
    report: (gateway: string, device: string, spi: number, top: number, rx: number, saved: string) =>
      ask((answer, done) => sessions.report(gateway, device, `${spi},${top},${rx},${saved}`, answer, done)),
    fetch: (gateway: string, spi: number) => ask((answer, done) => sessions.fetch(gateway, spi, answer, done)),
  };
}
