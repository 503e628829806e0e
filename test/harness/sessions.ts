// Sessions from an in-memory handshake, for the session, endpoint and stream tests.
import { randomBytes } from "node:crypto";
import { CryptoProvider } from "../../firmware/crypto/provider";
import { dhI2, dhI2Needs, dhR1, dhR1Finish, DhNeed, Established, keyPair } from "../../firmware/handshake/dh";
import { SaPolicy } from "../../firmware/session/sa";
import { SeqStorage } from "../../firmware/session/seqstore";
import { SUITE_CONSTRAINED } from "../../firmware/suite";
import { hostProvider, nodeKeyPair, nodeX25519 } from "../../host/crypto/provider";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export function memoryStore(): SeqStorage & { map: Map<string, string>; writes: number } {
  const map = new Map<string, string>();
  const s = { map, writes: 0, read: (n: string) => map.get(n), write: (n: string, v: string) => { s.writes++; map.set(n, v); } };
  return s;
}

export function policy(p: CryptoProvider, over: Partial<SaPolicy> = {}): SaPolicy {
  return {
    suite: SUITE_CONSTRAINED, p, aead: undefined, rekeyAfterMs: 3_600_000, datagram: true, windowSize: 64,
    lateKeyMs: 30_000, seqBlock: 32, store: memoryStore(), codec: undefined, compress: false, ...over,
  };
}

export function handshake(pi: CryptoProvider = hostProvider): { ei: Established; er: Established } {
  const gw = nodeKeyPair();
  const dev = nodeKeyPair();
  const kid = randomBytes(4);
  const r = { p: hostProvider, me: gw, lookup: (k: Uint8Array) => (hex(k) === hex(kid) ? dev.S : undefined) };
  const i = { p: pi, kid, me: dev, peer: gw.S };
  const pend = dhR1(r, nodeKeyPair(), 0x000101);
  const eph = keyPair(pi);
  const out = dhI2(i, eph, pend.msg, (dhI2Needs(i, eph, pend.msg) as DhNeed[]).map(([s, u]) => pi.x25519(s, u)), 0x000202);
  if (typeof out === "number") throw new Error("handshake");
  const er = dhR1Finish(r, pend, out.msg, nodeX25519);
  if (typeof er === "number") throw new Error("handshake");
  return { ei: out.est, er };
}

