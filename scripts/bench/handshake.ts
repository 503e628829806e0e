// Handshakes: bytes on the wire next to the published anchors; complete host handshakes per second next to
// Node's own TLS 1.3 handshakes on loopback, measured in the same run; and what one handshake costs a board
// in primitive operations (X25519, SHA-256 compressions, AES blocks), with a time estimate from the
// portable code in Node.
//
// TLS is set up with a self-signed EC P-256 certificate made by `openssl` on PATH; without openssl (or
// with SESAME_BENCH_TLS=psk) it falls back to TLS 1.3 with an external PSK (psk_dhe_ke, X25519).
import { execFileSync } from "node:child_process";
import { diffieHellman, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { aesBlock } from "../../firmware/crypto/ccm";
import { ccmAead, CryptoProvider } from "../../firmware/crypto/provider";
import { hmac } from "../../firmware/crypto/hmac";
import { sha256 } from "../../firmware/crypto/sha256";
import { x25519 } from "../../firmware/crypto/x25519";
import {
  dhI1, dhI1Finish, dhI1FinishNeeds, dhI1Needs, dhI2, dhI2Needs, dhR1, dhR1Finish, dhR2, DhInitiator, DhNeed, DhResponder,
  Established, keyPair,
} from "../../firmware/handshake/dh";
import {
  pskConfirm, pskI1, pskI1Finish, pskI2, pskPid, pskR1, pskR1Finish, pskR2, PskInitiator, PskKeys, PskMatch, PskResponder,
} from "../../firmware/handshake/psk";
import {
  SIZE_DH_I1, SIZE_DH_I2, SIZE_DH_R1, SIZE_DH_R2, SIZE_PSK_I1, SIZE_PSK_I2, SIZE_PSK_R1, SIZE_PSK_R2,
} from "../../firmware/handshake/wire";
import { hostProvider, nodeKeyPair, nodeX25519, x25519PrivateKey, x25519PublicKey } from "../../host/crypto/provider";
import { callsFor, fmt, median, progress, rate, table } from "../lib/measure";
import { pskFleetTable } from "./psk-fleet";

const ROUNDS = 3;
const SESAME_MS = 400; // per mode per round
const TLS_MS = 1000; // per round: 3 s of TLS handshakes in all

// ---- table 1: bytes ---------------------------------------------------------------------------------------

function bytesTable(): string {
  const sesame = (name: string, a: number, b: number, fs: string, idp: string) =>
    [name, 2, `${a} + ${b}`, a + b, 1, fs, idp, "firmware/handshake/wire.ts"];
  const rows: (string | number)[][] = [
    sesame("sesame dh order R", SIZE_DH_R1, SIZE_DH_I2, "yes (ephemeral X25519)", "initiator (kid encrypted)"),
    sesame("sesame dh order I", SIZE_DH_I1, SIZE_DH_R2, "yes (ephemeral X25519)", "initiator (kid encrypted)"),
    sesame("sesame psk order R", SIZE_PSK_R1, SIZE_PSK_I2, "yes (key evolution)", "pseudonym (pid, unlinkable)"),
    sesame("sesame psk order I", SIZE_PSK_I1, SIZE_PSK_R2, "yes (key evolution)", "pseudonym (pid, unlinkable)"),
    ["EDHOC m3 static DH, kid", 3, "37 + 45 + 19", 101, 1.5, "yes", "initiator", "RFC 9528; iotops-security-protocol-comparison"],
    ["SVC paper", 2, "-", 880, 1, "-", "-", "SVC paper (total only)"],
    ["WireGuard (Noise IK)", 2, "148 + 92", 240, 1, "yes", "initiator", "WireGuard paper (NDSS 2017) 5.4"],
    ["DTLS 1.3 PSK (no ECDHE)", 3, "136 + 153 + 56", 345, 1.5, "no", "no (PSK identity in clear)", "iotops-security-protocol-comparison"],
    ["LoRaWAN join", 2, "23 + 17", 40, 1, "no", "no (DevEUI in clear)", "LoRaWAN 1.0.x 6.2 (no CFList)"],
  ];
  return table(
    ["protocol", "messages", "bytes per message", "total B", "round trips", "forward secrecy", "identity protection", "source"],
    rows,
  );
}

// ---- complete handshakes, both sides in this process ------------------------------------------------------

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const xs = (p: CryptoProvider, needs: DhNeed[]) => needs.map(([s, u]) => p.x25519(s, u));

type Pair = [Established, Established];
type Handshake = () => Pair;

function fail(what: string): never {
  throw new Error("handshake bench: " + what + " failed");
}

/** dh mode: fresh ephemeral keys on both sides every time; static keys made once (as a TLS certificate is). */
function dhHandshakes(pi: CryptoProvider, pr: CryptoProvider): { R: Handshake; I: Handshake } {
  const gw = keyPair(hostProvider);
  const dev = keyPair(hostProvider);
  const kid = Uint8Array.from([0xd1, 0x5e, 0xa5, 0xe1]);
  const devices = new Map([[hex(kid), dev.S]]);
  const r: DhResponder = { p: pr, me: gw, lookup: (k) => devices.get(hex(k)) };
  const i: DhInitiator = { p: pi, kid, me: dev, peer: gw.S };
  const R = (): Pair => {
    const pend = dhR1(r, keyPair(pr), 0x0a0b0c);
    const eph = keyPair(pi);
    const needs = dhI2Needs(i, eph, pend.msg);
    if (typeof needs === "number") fail("dh I2 needs");
    const out = dhI2(i, eph, pend.msg, xs(pi, needs), 0x010203);
    if (typeof out === "number") fail("dh I2");
    const er = dhR1Finish(r, pend, out.msg, pr.x25519);
    if (typeof er === "number") fail("dh R1 finish");
    return [out.est, er];
  };
  const I = (): Pair => {
    const eph = keyPair(pi);
    const pend = dhI1(i, eph, xs(pi, dhI1Needs(i, eph)), 0x010203);
    if (typeof pend === "number") fail("dh I1");
    const out = dhR2(r, () => keyPair(pr), pend.msg, pr.x25519, 0x0a0b0c);
    if (typeof out === "number") fail("dh R2");
    const needs = dhI1FinishNeeds(i, pend, out.msg);
    if (typeof needs === "number") fail("dh I1 finish needs");
    const ei = dhI1Finish(i, pend, out.msg, xs(pi, needs));
    if (typeof ei === "number") fail("dh I1 finish");
    return [ei, out.est];
  };
  return { R, I };
}

/**
 * psk mode, including what keeps its forward secrecy: after each handshake both sides evolve the key
 * (pskConfirm, as on the first record that opens) and the gateway re-indexes the device's new pid.
 */
function pskHandshakes(pi: CryptoProvider, pr: CryptoProvider): { R: Handshake; I: Handshake } {
  const psk = randomBytes(32);
  const id = Uint8Array.from([1, 2, 3, 4]);
  const dev: PskKeys = { current: Uint8Array.from(psk), previous: undefined };
  const gw: PskKeys = { current: Uint8Array.from(psk), previous: undefined };
  const i: PskInitiator = { p: pi, id, keys: dev };
  // The gateway's pid index: pid -> the key it came from (current and previous).
  let index = new Map<string, PskMatch>([[hex(pskPid(pr, gw.current)), { device: id, key: gw.current }]]);
  const r: PskResponder = { p: pr, lookup: (pid) => index.get(hex(pid)) };
  const confirm = (ei: Established, er: Established, used: Uint8Array) => {
    pskConfirm(pi, dev, dev.current, ei.sessionHash);
    let usedPid = "";
    for (const [k, m] of index) if (m.key === used) usedPid = k;
    pskConfirm(pr, gw, used, er.sessionHash);
    index = new Map([
      [usedPid, { device: id, key: gw.previous! }],
      [hex(pskPid(pr, gw.current)), { device: id, key: gw.current }],
    ]);
  };
  const R = (): Pair => {
    const pend = pskR1(pr, pr.random(8), 0x00aa01);
    const out = pskI2(i, dev.current, pend.msg, pi.random(8), 0x00bb02);
    if (typeof out === "number") fail("psk I2");
    const res = pskR1Finish(r, pend, out.msg);
    if (typeof res === "number") fail("psk R1 finish");
    confirm(out.est, res.est, res.key);
    return [out.est, res.est];
  };
  const I = (): Pair => {
    const pend = pskI1(i, dev.current, pi.random(8), 0x00bb02);
    const out = pskR2(r, pend.msg, pr.random(8), 0x00aa01);
    if (typeof out === "number") fail("psk R2");
    const ei = pskI1Finish(i, pend, out.msg);
    if (typeof ei === "number") fail("psk I1 finish");
    confirm(ei, out.est, out.key);
    return [ei, out.est];
  };
  return { R, I };
}

function agree([a, b]: Pair): void {
  if (hex(a.masterKey) !== hex(b.masterKey) || hex(a.sessionHash) !== hex(b.sessionHash)) fail("key agreement");
}

// ---- Node TLS 1.3 on loopback -----------------------------------------------------------------------------

type TlsSetup = { how: string; server: tls.TlsOptions; client: tls.ConnectionOptions; expectReused: boolean };

function hasOpenssl(): boolean {
  if (process.env.SESAME_BENCH_TLS === "psk") return false;
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const V13 = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3" } as const;

function tlsSetup(): TlsSetup {
  if (hasOpenssl()) {
    const dir = mkdtempSync(join(tmpdir(), "sesame-tls-"));
    try {
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost", "-days", "1", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"),
      ], { stdio: "ignore" });
      const key = readFileSync(join(dir, "k.pem"));
      const cert = readFileSync(join(dir, "c.pem"));
      // One client context, reused: no per-connection CA parsing, and no session is ever offered back
      // (Node's tls.connect resumes only when given `session`), so every handshake is a full one.
      const ctx = tls.createSecureContext({ ca: cert, ...V13 });
      return {
        how: "self-signed EC P-256 certificate (openssl req -x509), ECDSA-P256-SHA256 signature, X25519 key share, " +
          "client verifies the chain (certificate pinned as its CA) and the name",
        server: { key, cert, ...V13 },
        client: { secureContext: ctx, servername: "localhost", ...V13 },
        expectReused: false,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // TLS 1.3 with an external PSK: OpenSSL's PSK callbacks need a SHA-256 suite; the key share (psk_dhe_ke,
  // X25519) is still done, the certificate signature and its check are not. OpenSSL reports such a session
  // as "reused" (it is resumed from the PSK), though no earlier session exists.
  const psk = randomBytes(32);
  const ciphers = "TLS_AES_128_GCM_SHA256";
  return {
    how: (process.env.SESAME_BENCH_TLS === "psk" ? "SESAME_BENCH_TLS=psk" : "no openssl on PATH") + ": TLS 1.3 external PSK (pskCallback), TLS_AES_128_GCM_SHA256, psk_dhe_ke with X25519, no certificate",
    server: { ciphers, pskCallback: (_s, identity) => (identity === "sesame" ? psk : null), pskIdentityHint: "bench", ...V13 },
    client: { ciphers, pskCallback: () => ({ psk, identity: "sesame" }), checkServerIdentity: () => undefined, ...V13 },
    expectReused: true,
  };
}

type TlsBench = { round: (ms: number) => Promise<number>; close: () => Promise<void>; how: string; checked: () => string };

async function tlsBench(): Promise<TlsBench> {
  const setup = tlsSetup();
  let onServer: ((ok: boolean) => void) | undefined;
  const server = tls.createServer(setup.server, (s) => {
    s.on("error", () => {});
    const f = onServer;
    onServer = undefined;
    f?.(true);
    s.destroy();
  });
  server.on("tlsClientError", () => {
    const f = onServer;
    onServer = undefined;
    f?.(false);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const port = (server.address() as { port: number }).port;
  let wrongReuse = 0;
  let failures = 0;
  let protocol = "";
  let group = "";

  /** One full handshake: resolves when the client saw secureConnect and the server secureConnection. */
  const one = () => new Promise<void>((resolve0, reject0) => {
    let client = false;
    let srv = false;
    // A handshake whose events went astray (a late server event of an earlier connection) must not hang
    // the bench: it times out and counts as a failure.
    const timer = setTimeout(() => reject0(new Error("TLS handshake timed out")), 5000);
    const resolve = () => (clearTimeout(timer), resolve0());
    const reject = (e: Error) => (clearTimeout(timer), reject0(e));
    // The client closes only once the server has the handshake too: closing at secureConnect would reset
    // the connection before the server reads the client's Finished.
    const sock = tls.connect({ port, host: "127.0.0.1", ...setup.client });
    onServer = (ok) => {
      if (!ok) return reject(new Error("TLS handshake failed on the server"));
      srv = true;
      if (client) {
        sock.destroy();
        resolve();
      }
    };
    sock.once("error", reject);
    sock.once("secureConnect", () => {
      if (sock.isSessionReused() !== setup.expectReused) wrongReuse++;
      if (!protocol) {
        protocol = `${sock.getProtocol()} ${sock.getCipher().standardName}`;
        const ek = sock.getEphemeralKeyInfo();
        group = ek && "name" in ek ? String(ek.name) : "?";
      }
      client = true;
      if (srv) {
        sock.destroy();
        resolve();
      }
    });
  });

  const round = async (ms: number): Promise<number> => {
    const start = process.hrtime.bigint();
    const stop = start + BigInt(ms) * 1_000_000n;
    let n = 0;
    let now = start;
    while (now < stop) {
      try {
        await one();
        n++;
      } catch (e) {
        if (++failures > 20) throw e;
      }
      now = process.hrtime.bigint();
    }
    return (n * 1e9) / Number(now - start);
  };
  for (let k = 0; k < 50; k++) await one().catch(() => failures++); // warm up
  return {
    round,
    how: setup.how,
    checked: () => `${protocol}, key share ${group}; handshakes reported as resumed ${setup.expectReused ? "(expected, PSK)" : "(must be 0)"}: ` +
      `${setup.expectReused ? "all but " + wrongReuse : wrongReuse}; failed or timed out: ${failures}`,
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

const SLICES = 8;

/** fn's and bare's rates (ops/s) over `ms` of fn, in SLICES alternating slices, bare given half fn's time. */
function paired(fn: () => void, bare: () => void, ms: number): { fn: number; bare: number } {
  for (let i = 0; i < 200; i++) (fn(), bare()); // warm up the JIT
  let fnN = 0, fnNs = 0, bareN = 0, bareNs = 0;
  for (let k = 0; k < SLICES; k++) {
    const [a, at] = callsFor(fn, ms / SLICES, 10);
    const [b, bt] = callsFor(bare, ms / SLICES / 2, 10);
    fnN += a;
    fnNs += at;
    bareN += b;
    bareNs += bt;
  }
  return { fn: (fnN * 1e9) / fnNs, bare: (bareN * 1e9) / bareNs };
}

// ---- table 2: host handshakes per second ------------------------------------------------------------------

async function hostTable(): Promise<string> {
  const dh = dhHandshakes(hostProvider, hostProvider);
  const psk = pskHandshakes(hostProvider, hostProvider);
  const modes: [string, Handshake][] = [
    ["sesame dh order R", dh.R],
    ["sesame dh order I", dh.I],
    ["sesame psk order R", psk.R],
    ["sesame psk order I", psk.I],
  ];
  for (const [, h] of modes) for (let k = 0; k < 3; k++) agree(h()); // both sides hold one key before timing
  const tlsB = await tlsBench();
  const sesame: number[][] = modes.map(() => []);
  const tlsRates: number[] = [];
  // OpenSSL's X25519 alone, on keys already imported: 8 of them (4 per side, counting each key pair made)
  // bound a dh handshake; measured in every round, next to the handshakes.
  const sc = randomBytes(32);
  const u = keyPair(hostProvider).S;
  const sk = x25519PrivateKey(sc);
  const pk = x25519PublicKey(u);
  const bare = () => diffieHellman({ privateKey: sk, publicKey: pk });
  // A dh mode's bound is measured with it, in alternating slices (handshakes, then X25519 alone, SLICES times
  // a round), so that both see the same moment of a shared machine: rounds measured apart were seen to
  // swing the ratio by 10 points.
  const xPaired: number[][] = modes.map(() => []);
  const total = ROUNDS * (modes.length + 1);
  let done = 0;
  // Interleaved rounds, so that a noisy moment on a shared machine hits every figure alike.
  for (let r = 0; r < ROUNDS; r++) {
    for (let m = 0; m < modes.length; m++) {
      progress(`handshakes: ${modes[m][0]} (round ${r + 1})`, done++, total);
      if (modes[m][0].includes(" dh ")) {
        const p = paired(modes[m][1], bare, SESAME_MS);
        sesame[m].push(p.fn);
        xPaired[m].push(p.bare);
      } else {
        sesame[m].push(rate(modes[m][1], SESAME_MS, 1).opsPerSec);
      }
    }
    progress(`handshakes: TLS 1.3 loopback (round ${r + 1})`, done++, total);
    tlsRates.push(await tlsB.round(TLS_MS));
  }
  progress("handshakes", total, total);
  await tlsB.close();
  // Where the dh time goes: hostProvider's X25519 as called (a fresh public key imported from JWK), a key
  // pair made (OpenSSL's keygen and one export), next to OpenSSL's X25519 alone on keys already imported.
  const fresh = Array.from({ length: 1 << 14 }, () => randomBytes(32)); // any 32 bytes are an X25519 public key
  let f = 0;
  const xCall = rate(() => nodeX25519(sc, fresh[f++ & (fresh.length - 1)]), 250, 3).opsPerSec;
  const xGen = rate(() => hostProvider.keyPair(), 250, 3).opsPerSec;
  const xBare = median(xPaired.flat());
  const t = median(tlsRates);
  const spread = (xs: number[]) => `${fmt(Math.min(...xs))}..${fmt(Math.max(...xs))}`;
  const rows: (string | number)[][] = modes.map(([name], m) => {
    const s = median(sesame[m]);
    // Per round: the handshakes next to the X25519 bound measured with them.
    const bound = name.includes(" dh ") ? median(sesame[m].map((v, r) => v / (xPaired[m][r] / 8))) : NaN;
    return [name, fmt(s), spread(sesame[m]), (1e6 / s).toFixed(0), (s / t).toFixed(1) + "x", s / t >= 3 ? "yes" : "NO", Number.isNaN(bound) ? "-" : (bound * 100).toFixed(0) + "%"];
  });
  rows.push(["node:tls TLS 1.3, loopback", fmt(t), spread(tlsRates), (1e6 / t).toFixed(0), "1.0x", "-", "-"]);
  return table(["complete handshake (client+server in one process)", "hs/s (median)", "rounds", "us/hs", "vs TLS", ">= 3x", "of X25519 bound"], rows) +
    `\nTLS: ${tlsB.how}.\n     ${tlsB.checked()}.` +
    "\nEvery figure runs both sides in this one Node process on one core: sesame's initiator and responder (hostProvider," +
    "\nnode:crypto), and TLS's client and server (a node:tls server on 127.0.0.1, sequential new connections, counted" +
    "\nwhen the client's secureConnect and the server's secureConnection have both fired; loopback TCP, connection" +
    "\nset-up and teardown are in the TLS figure and not in sesame's, which passes messages in memory)." +
    "\ndh: fresh ephemeral keys on both sides, static keys made once; psk: includes the key evolution on both sides" +
    `\nand the gateway's pid re-index. ${ROUNDS} interleaved rounds (sesame ${SESAME_MS} ms, TLS ${TLS_MS} ms each), median.` +
    `\nOpenSSL's X25519 on keys already imported: ${fmt(xBare)}/s (median of the rounds); a dh handshake makes 8 such calls` +
    `\n(4 per side, counting each key pair made), so "of X25519 bound" = handshakes/s / (X25519/s / 8), per round, the X25519` +
    `\nrate measured in ${SLICES} slices alternating with the mode's own (its handshakes ${SESAME_MS} ms, X25519 alone ${SESAME_MS / 2} ms). As the host` +
    `\ncalls them: X25519 with a fresh peer key (a JWK import) ${fmt(xCall)}/s, a fresh key pair (a random scalar imported, OpenSSL` +
    `\nderiving its public key, one JWK export) ${fmt(xGen)}/s.`;
}

// ---- table 3: device cost per handshake -------------------------------------------------------------------

type Counts = { x25519: number; sha256: number; blocks: number; ccm: number; aes: number };
const zero = (): Counts => ({ x25519: 0, sha256: 0, blocks: 0, ccm: 0, aes: 0 });

/** The portable primitives (X25519 from node:crypto, for speed: only the count matters), counted. */
function counting(c: Counts): CryptoProvider {
  const sha = (m: Uint8Array) => {
    c.sha256++;
    c.blocks += Math.ceil((m.length + 9) / 64); // padding: 0x80 and a 64-bit length
    return sha256(m);
  };
  return {
    name: "counting",
    sha256: sha,
    hmac: (k, m) => hmac(sha, 64, k, m),
    ccm: (key, tagLen, nonceLen) => {
      const enc = aesBlock(key);
      const a = ccmAead((inp, out) => (c.aes++, enc(inp, out)), tagLen, nonceLen);
      return { ...a, seal: (n, aad, pt) => (c.ccm++, a.seal(n, aad, pt)), open: (n, aad, ct) => (c.ccm++, a.open(n, aad, ct)) };
    },
    x25519: (s, u) => (c.x25519++, nodeX25519(s, u)),
    random: (n) => randomBytes(n),
    keyPair: () => (c.x25519++, nodeKeyPair()),
  };
}

/** ms per call: the median of `rounds` batches of n calls. */
function perCall(fn: () => void, n: number, rounds = 5): number {
  for (let k = 0; k < Math.min(n, 50); k++) fn();
  const t: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const s = process.hrtime.bigint();
    for (let k = 0; k < n; k++) fn();
    t.push(Number(process.hrtime.bigint() - s) / 1e6 / n);
  }
  return median(t);
}

function deviceTable(): string {
  const ci = zero();
  const cr = zero();
  const dh = dhHandshakes(counting(ci), counting(cr));
  const psk = pskHandshakes(counting(ci), counting(cr));
  const rows: (string | number)[][] = [];
  const costs: [string, Counts, Counts][] = [];
  for (const [name, h] of [["dh order R", dh.R], ["dh order I", dh.I], ["psk order R", psk.R], ["psk order I", psk.I]] as const) {
    Object.assign(ci, zero());
    Object.assign(cr, zero());
    agree(h());
    costs.push([name, { ...ci }, { ...cr }]);
  }
  // Per-op times of the portable code in Node.
  progress("handshakes: portable op times", 0, 4);
  const key = randomBytes(16);
  const enc = aesBlock(key);
  const blk = randomBytes(16);
  const out = new Uint8Array(16);
  const m55 = randomBytes(55); // exactly one compression
  const tSha = perCall(() => sha256(m55), 2000);
  progress("handshakes: portable op times", 1, 4);
  const tAes = perCall(() => enc(blk, out), 20000);
  const tKey = perCall(() => aesBlock(key), 2000);
  progress("handshakes: portable op times", 2, 4);
  const tX = perCall(() => x25519(randomBytes(32), randomBytes(32)), 10, 3);
  progress("handshakes: portable op times", 4, 4);
  const est = (c: Counts) => c.x25519 * tX + c.blocks * tSha + c.ccm * tKey + c.aes * tAes;
  for (const [name, i, r] of costs) {
    for (const [side, c] of [["initiator (device)", i], ["responder (gateway)", r]] as const) {
      const ms = est(c);
      rows.push([`${name}`, side, c.x25519, c.sha256, c.blocks, c.ccm, c.aes, ms.toFixed(2), (ms * 3000 / 1000).toFixed(ms * 3 < 10 ? 2 : 0)]);
    }
  }
  return table(
    ["mode", "side", "X25519", "sha256 calls", "SHA-256 compressions", "ccm seal/open", "AES blocks", "est. Node ms", "est. Espruino s"],
    rows,
  ) +
    "\nestimate: Node portable code; Espruino is ~3000x slower (the last column is that factor applied, not a measurement)." +
    `\nPer-op times (portable, Node): X25519 ${tX.toFixed(2)} ms, SHA-256 compression ${(tSha * 1000).toFixed(2)} us, ` +
    `AES block ${(tAes * 1000).toFixed(3)} us, AES key expansion ${(tKey * 1000).toFixed(2)} us (one per ccm call).` +
    "\nCounts come from wrapping the provider while running one complete handshake; psk counts include the key" +
    "\nevolution (pskConfirm) on both sides and, on the responder, the new pid. Static keys are made beforehand.";
}

// ---- the section ------------------------------------------------------------------------------------------

export async function benchHandshake(): Promise<string> {
  const bytes = bytesTable();
  const device = deviceTable();
  const host = await hostTable();
  const fleet = pskFleetTable();
  return [
    "Handshake bytes (sesame from firmware/handshake/wire.ts; the rest are published figures)\n", bytes,
    "\n\nHost handshakes per second (hostProvider = node:crypto), next to Node's TLS 1.3 measured in this run\n", host,
    "\n\nDevice cost per handshake, in primitive operations (per side)\n", device,
    "\n\nA psk hello at the gateway by fleet size (the pid index: the same cost at 10 and at 100,000 devices)\n", fleet,
  ].join("");
}
