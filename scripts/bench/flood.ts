// Memory and work under a handshake flood: junk dh I1 messages (the right type byte and size, random
// contents) from many sources at a gateway's responder table, with a genuine device among them.
import { randomBytes } from "node:crypto";
import { CryptoProvider } from "../../firmware/crypto/provider";
import { memoryStorage } from "../../firmware/runtime/facade";
import { EndpointConfig, epInput, epNew, epReady, epStart, epTakeOutput } from "../../firmware/session/endpoint";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import { hostProvider, nodeKeyPair } from "../../host/crypto/provider";
import { DEFAULT_LIMITS, ResponderTable } from "../../host/gateway/responders";
import { progress, table } from "../lib/measure";

export function benchFlood(): string {
  let x25519 = 0;
  const counting: CryptoProvider = { ...hostProvider, x25519: (s, u) => (x25519++, hostProvider.x25519(s, u)), keyPair: () => (x25519++, hostProvider.keyPair()) };
  const gw = nodeKeyPair(), dev = nodeKeyPair(), kid = randomBytes(4);
  const policy = (p: CryptoProvider) => ({ suite: SUITE_CONSTRAINED, p, aead: undefined, rekeyAfterMs: 3.6e6, datagram: true, windowSize: 64, lateKeyMs: 30000, seqBlock: 16, store: memoryStorage(), codec: undefined, compress: false });
  const base = { dh: true, responderFirst: false, sliceSteps: 0, retryMs: 2000, dhI: undefined, dhR: undefined, pskI: undefined, pskR: undefined, pskStore: undefined, spiLive: () => false };
  const config = (): EndpointConfig => ({ ...base, initiator: false, p: counting, policy: policy(counting), dhR: { p: counting, me: gw, lookup: (k) => (Buffer.from(k).equals(kid) ? dev.S : undefined) } });
  const rows: (string | number)[][] = [];
  for (const [sources, perSource] of [[100_000, 1], [1_000, 100]] as const) {
    x25519 = 0;
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    const t = new ResponderTable(config, DEFAULT_LIMITS);
    const device = epNew({ ...base, initiator: true, p: hostProvider, policy: policy(hostProvider), dhI: { p: hostProvider, kid, me: dev, peer: gw.S } });
    epStart(device, 0);
    const total = sources * perSource;
    const start = process.hrtime.bigint();
    for (let n = 0; n < total; n++) {
      if (n % 5000 === 0) progress(`flood: ${sources} sources`, n, total);
      const junk = Buffer.concat([Buffer.from([0, 0, 0, 0x13]), randomBytes(47)]);
      t.input(`src-${n % sources}`, junk, 1, n >> 4);
      if (n === total >> 1) for (const o of epTakeOutput(device)) for (const b of t.input("genuine", o.bytes, 1, n >> 4)) epInput(device, b.bytes, 1, n >> 4);
    }
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    global.gc?.();
    const grown = (process.memoryUsage().heapUsed - before) / 1e6;
    progress("flood", 1, 1);
    rows.push([`${sources} sources x ${perSource}`, total, t.stats.pending, t.stats.evicted, t.stats.throttled, x25519, (total / secs).toFixed(0), grown.toFixed(1), epReady(device) ? "yes" : "NO"]);
  }
  return table(["flood", "junk I1", "pending (max " + DEFAULT_LIMITS.maxPending + ")", "evicted", "throttled", "X25519 spent", "msgs/s", "heap growth MB", "genuine device in"], rows) +
    `\nLimits: ${DEFAULT_LIMITS.burst} attempts per source per ${DEFAULT_LIMITS.refillMs / 1000} s, ${DEFAULT_LIMITS.maxPending} half-open sources. A junk I1 costs one X25519 (es) when admitted; throttled and malformed ones cost none.` +
    (global.gc ? "" : "\n(heap figures without forced GC: run with node --expose-gc for tighter numbers)");
}
