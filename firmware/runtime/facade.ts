// A string-only face of the endpoint API, for the far side of a sandbox (the simulator, the interop tests,
// a board's REPL): endpoints live in a table and are named by a small integer; bytes travel as hex.
import { Bytes } from "#target";
import { fromHex, toHex } from "../bytes";
import { CryptoProvider } from "../crypto/provider";
import { SUITE_CONSTRAINED } from "../suite";
import { Endpoint, epInput, epPoll, epReady, epSession, epStart, epTakeInbox, epTakeOutput } from "../session/endpoint";
import { SaPolicy } from "../session/sa";
import { SeqStorage } from "../session/seqstore";
import { Codec } from "../record/gpcomp";
import { addTransport, deleteTransport, sessionRestore, sessionSave, sessionSend, setTransportUp } from "../session/session";
import { deviceEndpoint, gatewayEndpoint, parseFields } from "./config";

const endpoints: Endpoint[] = [];
let provider: CryptoProvider | undefined = undefined;
let storage: SeqStorage | undefined = undefined;
let codec: Codec | undefined = undefined;

/** A SeqStorage in RAM, for a board without flash storage wired (and for tests). */
export function memoryStorage(): SeqStorage {
  const t: { [name: string]: string } = {};
  return { read: (n: string) => t[n], write: (n: string, v: string) => { t[n] = v; } };
}

/** Sets the provider, the storage and the GPComp codec (none: GPComp refused) every endpoint made afterwards uses. */
export function facadeInit(p: CryptoProvider, s: SeqStorage, c: Codec | undefined): void {
  provider = p;
  storage = s;
  codec = c;
}

function spiLive(spi: number): boolean {
  for (let i = 0; i < endpoints.length; i++) if (endpoints[i].spi === spi) return true;
  return false;
}

/**
 * A new endpoint; role "device" or "gateway", conf as in runtime/config.ts plus the session policy's
 * window (window), rekey interval (rekey, ms), late-key time (late, ms), reservation block (block), and
 * gpcomp=1 to compress application payloads that shrink (with the codec facadeInit was given).
 * Returns its handle.
 */
export function epCreate(role: string, conf: string): number {
  if (provider === undefined || storage === undefined) throw "facade: call facadeInit first";
  const f = parseFields(conf);
  const num = (k: string, d: number) => (f[k] === undefined ? d : parseInt(f[k]));
  const policy: SaPolicy = {
    suite: SUITE_CONSTRAINED, p: provider, aead: undefined, rekeyAfterMs: num("rekey", 3600000), datagram: true,
    windowSize: num("window", 64), lateKeyMs: num("late", 30000), seqBlock: num("block", 16), store: storage,
    codec: codec, compress: codec !== undefined && f["gpcomp"] === "1",
  };
  const ep = role === "device" ? deviceEndpoint(provider, policy, conf, spiLive) : gatewayEndpoint(provider, policy, conf, spiLive);
  endpoints.push(ep);
  return endpoints.length - 1;
}

export function epStartH(h: number, now: number): void {
  epStart(endpoints[h], now);
}

/** Feeds one packet (hex) that arrived on transport `tid`; returns the session's RX_* result or 0. */
export function epFeedH(h: number, packetHex: string, tid: number, now: number): number {
  const b = fromHex(packetHex);
  return b === undefined ? 0 : epInput(endpoints[h], b, tid, now);
}

export function epPollH(h: number, now: number): boolean {
  return epPoll(endpoints[h], now);
}

/** Packets to send, as "tid:hex" joined by ",". */
export function epOutH(h: number): string {
  const o = epTakeOutput(endpoints[h]);
  const parts: string[] = [];
  for (let i = 0; i < o.length; i++) parts.push(o[i].transport + ":" + toHex(o[i].bytes));
  return parts.join(",");
}

export function epReadyH(h: number): boolean {
  return epReady(endpoints[h]);
}

export function epSendH(h: number, payloadHex: string, now: number): boolean {
  const s = epSession(endpoints[h]);
  const b: Bytes | undefined = fromHex(payloadHex);
  return s !== undefined && b !== undefined && sessionSend(s, b, now);
}

/** Received application payloads, hex, joined by ",". */
export function epInboxH(h: number): string {
  const got = epTakeInbox(endpoints[h]);
  const parts: string[] = [];
  for (let i = 0; i < got.length; i++) parts.push(toHex(got[i]));
  return parts.join(",");
}

/** "add", "delete", "up" or "down" for transport `tid` of the endpoint's session (the draft's socket options). */
export function epTransportH(h: number, op: string, tid: number): void {
  const ep = endpoints[h];
  if (op === "handshake") ep.transport = tid;
  const s = ep.session;
  if (s === undefined) return;
  if (op === "add") addTransport(s, tid, "t" + tid);
  else if (op === "delete") deleteTransport(s, tid);
  else if (op === "up" || op === "down") setTransportUp(s, tid, op === "up");
}

/** Moves the sending sequence number (tests start near the end of the 2^20 space to cross a rekey). */
export function epSetSeqH(h: number, seq: number): void {
  const s = endpoints[h].session;
  if (s === undefined) return;
  s.out.seq.next = seq;
  s.out.seq.limit = seq;
}

/**
 * A power cycle of the endpoint's session: saved and restored on its transports. The restored session refuses
 * its saved receiving key and asks the peer with KEY_UPDATE to move on (docs/PROTOCOL.md 3.5).
 */
export function epRestoreH(h: number, now: number): void {
  const ep = endpoints[h];
  const s = ep.session;
  const r = s === undefined ? undefined : sessionRestore(s.inb.policy, sessionSave(s), now);
  if (s === undefined || r === undefined) return;
  r.transports = s.transports;
  ep.session = r;
}

/** "state,handshakes,failures,epochOut,epochIn,sent,received,rejected" for reports. */
export function epInfoH(h: number): string {
  const ep = endpoints[h];
  const s = ep.session;
  const n = [ep.state, ep.handshakes, ep.failures, s === undefined ? -1 : s.out.epoch.index, s === undefined ? -1 : s.inb.cur.epoch.index,
    s === undefined ? 0 : s.sent, s === undefined ? 0 : s.received, s === undefined ? 0 : s.rejected];
  return n.join(",");
}
