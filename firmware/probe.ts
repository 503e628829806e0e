// One string-in, string-out entry point to every portable primitive, so the same vector files
// (test/vectors/*.json) can be run on every target: the TypeScript source in Node, the Espruino bundle,
// and the Lua bundle, whose only common currency across a sandbox boundary is the string.
import { alloc, Bytes, shr, u32, unsigned } from "#target";
import { fromHex, toHex } from "./bytes";
import { aesEncryptBlock, aesExpandKey } from "./crypto/aes";
import { aesBlock, ccmOpen, ccmSeal } from "./crypto/ccm";
import { hkdfSha256 } from "./crypto/hkdf";
import { hmacSha256 } from "./crypto/hmac";
import { sha256 } from "./crypto/sha256";
import { x25519, x25519Result, x25519Start, x25519Step } from "./crypto/x25519";
import { checkHeader, FLAG_GPCOMP, HEADER_SIZE, Header, readHeader, REJECT_NAMES, writeHeader } from "./record/header";
import { Codec, gpcompPack, gpcompUnpack } from "./record/gpcomp";
import { openRecord, parseRecord, sealRecord } from "./record/record";
import { isErrorPacket, messageType } from "./handshake/wire";
import { ccmAead } from "./crypto/provider";
import { SUITE_BACKBONE, SUITE_CONSTRAINED } from "./suite";
import { epochKeys, nextTrafficSecret, trafficSecret } from "./session/keys";
import { formatDecimal, parseDecimal } from "./session/seqstore";
import { loraFrameAirtimeUs, Region } from "./link/lora";
import { bleAccept, bleFragment, bleReassemblerNew, BLE_MAX_PACKET } from "./link/ble";
import { portableProvider, CryptoProvider } from "./crypto/provider";
import { x25519Base } from "./crypto/x25519";
import { dhI1, dhI1Finish, dhI1FinishNeeds, dhI1Needs, dhI2, dhI2Needs, dhR1, dhR1Finish, dhR2, DhNeed, Established, KeyPair } from "./handshake/dh";
import { pskI1, pskI1Finish, pskI2, pskR1, pskR1Finish, pskR2 } from "./handshake/psk";

/** The result of a probe that was refused: an authentication failure or a rejected input. */
export const PROBE_FAIL = "FAIL";

/** GPComp's codec for the gpcomp.* operations: none until probeInit gives one (never, in Lua). */
let codec: Codec | undefined = undefined;

/**
 * Gives the probe the platform's GPComp codec: `sesame.probeInit(require)` on Espruino (the native
 * heatshrink module), the host's module with the same interface in Node. Lua has no codec (firmware/hw/nodemcu.ts).
 */
export function probeInit(req: (this: void, name: string) => unknown): void {
  codec = req("heatshrink") as Codec;
}

function hex(s: string): Bytes {
  const b = fromHex(s);
  if (b === undefined) throw "probe: bad hex argument";
  return b;
}

const dec = parseDecimal;

/** A word from 8 hex digits. */
function word(s: string): number {
  const b = hex(s);
  return u32(b[0] * 256 + b[1], b[2] * 256 + b[3]);
}

function hex8(w: number): string {
  const b = alloc(4);
  for (let i = 0; i < 4; i++) b[i] = shr(w, 24 - 8 * i) & 0xff;
  return toHex(b);
}

/** "spi.flags.length.seqHi.seq", each 8 hex digits: the header fields in one argument. */
function headerOf(s: string): Header {
  return {
    spi: unsigned(word(s.substring(0, 8))),
    flags: unsigned(word(s.substring(9, 17))),
    length: unsigned(word(s.substring(18, 26))),
    seqHi: unsigned(word(s.substring(27, 35))),
    seq: unsigned(word(s.substring(36, 44))),
  };
}

function describe(h: Header): string {
  return hex8(h.spi) + "." + hex8(h.flags) + "." + hex8(h.length) + "." + hex8(h.seqHi) + "." + hex8(h.seq);
}

function recordProbe(op: string, a: string, b: string, c: string, d: string, e: string): string {
  const format = dec(a);
  if (op === "record.header") {
    const h = headerOf(b);
    const bad = checkHeader(format, h);
    if (bad !== 0) return "REJECT:" + REJECT_NAMES[bad];
    const out = alloc(HEADER_SIZE[format]);
    writeHeader(format, h, out, 0);
    return toHex(out);
  }
  if (op === "record.parse") {
    const h = readHeader(format, hex(b), 0);
    return typeof h === "number" ? "REJECT:" + REJECT_NAMES[h] : describe(h);
  }
  if (op === "packet.kind") {
    // How a receiver sorts one datagram (docs/PROTOCOL.md 1.5): a handshake message by its shape, else the
    // error packet, else a record of the format, parsed (the suite's tag: 8 compact, 16 large and extreme).
    const p = hex(b);
    const type = messageType(p);
    if (type > 0) return "handshake:" + hex8(type).substring(6, 8);
    if (isErrorPacket(p)) return "error";
    const h = parseRecord(format, format === 0 ? SUITE_CONSTRAINED.tagLen : SUITE_BACKBONE.tagLen, p);
    return typeof h === "number" ? "REJECT:" + REJECT_NAMES[h] : "record:" + describe(h);
  }
  // record.seal / record.open: compact format under suite `constrained` (AES-128-CCM-8, 13-byte IV).
  // gpcomp.seal / gpcomp.open: the same, as a session sends and receives with GPComp (docs/PROTOCOL.md 1.7).
  const aead = ccmAead(aesBlock(hex(b)), SUITE_CONSTRAINED.tagLen, SUITE_CONSTRAINED.nonceLen);
  if (op === "record.seal" || op === "gpcomp.seal") {
    const h = headerOf(d);
    let payload = hex(e);
    const packed = op === "gpcomp.seal" ? gpcompPack(codec, payload) : undefined;
    if (packed !== undefined) payload = packed;
    const r = sealRecord(format, aead, hex(c), h.spi, packed !== undefined ? h.flags | FLAG_GPCOMP : h.flags, h.seqHi, h.seq, payload);
    return typeof r === "number" ? "REJECT:" + REJECT_NAMES[r] : toHex(r);
  }
  if (op === "record.open" || op === "gpcomp.open") {
    const r = openRecord(format, aead, hex(c), hex(d));
    if (typeof r === "number") return "REJECT:" + REJECT_NAMES[r];
    const payload = op === "gpcomp.open" && (r.header.flags & FLAG_GPCOMP) !== 0 ? gpcompUnpack(codec, r.payload) : r.payload;
    return typeof payload === "number" ? "REJECT:" + REJECT_NAMES[payload] : describe(r.header) + ":" + toHex(payload);
  }
  return "UNKNOWN:" + op;
}

// A provider whose entropy is never used: every random input of a probe is an argument.
const fixed: CryptoProvider = portableProvider((n: number) => {
  throw "probe: randomness requested";
});

function pair(secret: Bytes): KeyPair {
  return { s: secret, S: x25519Base(secret) };
}

function dhAll(needs: DhNeed[] | number): Bytes[] {
  if (typeof needs === "number") throw "probe: handshake message refused";
  const out: Bytes[] = [];
  for (let i = 0; i < needs.length; i++) out.push(fixed.x25519(needs[i][0], needs[i][1]));
  return out;
}

function hsOut(m1: Bytes, m2: Bytes, a: Established | number, b: Established | number): string {
  if (typeof a === "number" || typeof b === "number") return PROBE_FAIL;
  if (toHex(a.masterKey) !== toHex(b.masterKey)) return PROBE_FAIL;
  return toHex(m1) + "." + toHex(m2) + "." + toHex(a.masterKey);
}

/**
 * Complete handshakes from fixed inputs, both sides in portable code: the messages and K_M, joined by ".".
 * dh.R / dh.I: [responder secret, initiator secret, responder ephemeral, initiator ephemeral, "spiR.spiI.kid"]
 * psk.R / psk.I: [psk, N_R, N_I, "spiR.spiI.id"]
 */
function handshakeProbe(op: string, a: string, b: string, c: string, d: string, e: string): string {
  const ids = (op.substring(0, 3) === "dh." ? e : d).split(".");
  const spiR = dec(ids[0]);
  const spiI = dec(ids[1]);
  const who = hex(ids[2]);
  if (op === "psk.R" || op === "psk.I") {
    const key = hex(a);
    const i = { p: fixed, id: who, keys: { current: key, previous: undefined } };
    const r = { p: fixed, lookup: (pid: Bytes) => ({ device: who, key: key }) };
    if (op === "psk.R") {
      const pend = pskR1(fixed, hex(b), spiR);
      const out = pskI2(i, key, pend.msg, hex(c), spiI);
      if (typeof out === "number") return PROBE_FAIL;
      const fin = pskR1Finish(r, pend, out.msg);
      return hsOut(pend.msg, out.msg, out.est, typeof fin === "number" ? fin : fin.est);
    }
    const pend = pskI1(i, key, hex(c), spiI);
    const out = pskR2(r, pend.msg, hex(b), spiR);
    if (typeof out === "number") return PROBE_FAIL;
    return hsOut(pend.msg, out.msg, pskI1Finish(i, pend, out.msg), out.est);
  }
  const rs = pair(hex(a));
  const is = pair(hex(b));
  const resp = { p: fixed, me: rs, lookup: (kid: Bytes) => (toHex(kid) === toHex(who) ? is.S : undefined) };
  const init = { p: fixed, kid: who, me: is, peer: rs.S };
  const dh = (s: Bytes, u: Bytes) => fixed.x25519(s, u);
  if (op === "dh.R") {
    const pend = dhR1(resp, pair(hex(c)), spiR);
    const ie = pair(hex(d));
    const out = dhI2(init, ie, pend.msg, dhAll(dhI2Needs(init, ie, pend.msg)), spiI);
    if (typeof out === "number") return PROBE_FAIL;
    return hsOut(pend.msg, out.msg, out.est, dhR1Finish(resp, pend, out.msg, dh));
  }
  const ie = pair(hex(d));
  const pend = dhI1(init, ie, dhAll(dhI1Needs(init, ie)), spiI);
  if (typeof pend === "number") return PROBE_FAIL;
  const out = dhR2(resp, () => pair(hex(c)), pend.msg, dh, spiR);
  if (typeof out === "number") return PROBE_FAIL;
  return hsOut(pend.msg, out.msg, dhI1Finish(init, pend, out.msg, dhAll(dhI1FinishNeeds(init, pend, out.msg))), out.est);
}

/**
 * The device's link rules. link.lora.airtime: [payload bytes, data rate, region] -> microseconds on air
 * (LoRaWAN settings). link.ble.fragment: [packet, mtu, counter] -> chunks joined by ".".
 * link.ble.reassemble: [chunks joined by "."] -> delivered packets joined by "." then ":" and the drop count.
 */
function linkProbe(op: string, a: string, b: string, c: string): string {
  if (op === "link.lora.airtime") return formatDecimal(loraFrameAirtimeUs(dec(a), dec(b), c as Region));
  if (op === "link.ble.fragment") {
    const chunks = bleFragment(hex(a), dec(b), dec(c));
    const parts: string[] = [];
    for (let i = 0; i < chunks.length; i++) parts.push(toHex(chunks[i]));
    return parts.join(".");
  }
  if (op === "link.ble.reassemble") {
    const r = bleReassemblerNew(BLE_MAX_PACKET);
    const chunks = a.split(".");
    const got: string[] = [];
    for (let i = 0; i < chunks.length; i++) {
      const p = bleAccept(r, hex(chunks[i]));
      if (p !== undefined) got.push(toHex(p));
    }
    return got.join(".") + ":" + formatDecimal(r.dropped);
  }
  return "UNKNOWN:" + op;
}

/**
 * Runs operation `op` on hex (or decimal, where noted) string arguments and returns hex, or PROBE_FAIL.
 * Unused arguments are passed as "". Unknown operations return "UNKNOWN:" + op.
 */
export function probe(op: string, a: string, b: string, c: string, d: string, e: string): string {
  if (op === "hex") return toHex(hex(a));
  if (op === "aes.encrypt") {
    const out = alloc(16);
    aesEncryptBlock(aesExpandKey(hex(a)), hex(b), 0, out, 0);
    return toHex(out);
  }
  if (op === "ccm.seal") return toHex(ccmSeal(aesBlock(hex(a)), hex(b), hex(c), hex(d), dec(e)));
  if (op === "ccm.open") {
    const r = ccmOpen(aesBlock(hex(a)), hex(b), hex(c), hex(d), dec(e));
    return r === undefined ? PROBE_FAIL : toHex(r);
  }
  if (op === "sha256") return toHex(sha256(hex(a)));
  if (op === "hmac.sha256") return toHex(hmacSha256(hex(a), hex(b)));
  if (op === "hkdf.sha256") return toHex(hkdfSha256(hex(a), hex(b), hex(c), dec(d)));
  if (op === "x25519") return toHex(x25519(hex(a), hex(b)));
  if (op === "x25519.sliced") {
    const job = x25519Start(hex(a), hex(b));
    const steps = dec(c);
    while (!x25519Step(job, steps)) {
      // each call does a bounded slice of the work
    }
    return toHex(x25519Result(job));
  }
  if (op === "x25519.iterate") {
    // RFC 7748 5.2: k = u = 9, then (k, u) = (X25519(k, u), k) the given number of times.
    let k = alloc(32);
    let u = alloc(32);
    k[0] = 9;
    u[0] = 9;
    const n = dec(a);
    for (let i = 0; i < n; i++) {
      const next = x25519(k, u);
      u = k;
      k = next;
    }
    return toHex(k);
  }
  if (op.substring(0, 7) === "record." || op === "packet.kind" || op === "gpcomp.seal" || op === "gpcomp.open") return recordProbe(op, a, b, c, d, e);
  if (op === "gpcomp.compress") {
    // [payload] -> the FLAGS bit and the payload a sender seals: "80." + compressed, or "00." + as it was
    const packed = gpcompPack(codec, hex(a));
    return packed !== undefined ? "80." + toHex(packed) : "00." + a;
  }
  if (op === "gpcomp.decompress") {
    // [a payload that came with the GPComp bit] -> the payload the application gets, or REJECT:gpcomp
    const plain = gpcompUnpack(codec, hex(a));
    return typeof plain === "number" ? "REJECT:" + REJECT_NAMES[plain] : toHex(plain);
  }
  if (op === "keys.epoch") {
    // [K_M, direction, key index, suite id] -> key.iv
    let secret = trafficSecret(fixed, hex(a), dec(b));
    for (let i = 0; i < dec(c); i++) secret = nextTrafficSecret(fixed, secret);
    const k = epochKeys(fixed, secret, dec(c), dec(d) === SUITE_BACKBONE.id ? SUITE_BACKBONE : SUITE_CONSTRAINED);
    return toHex(k.key) + "." + toHex(k.iv);
  }
  if (op === "dh.R" || op === "dh.I" || op === "psk.R" || op === "psk.I") return handshakeProbe(op, a, b, c, d, e);
  if (op.substring(0, 5) === "link.") return linkProbe(op, a, b, c);
  return "UNKNOWN:" + op;
}
