// The session handoff's messages (host/backbone/frame.ts 0x0A-0x0C, docs/PROTOCOL.md 3.8): what a terminate
// gateway (host/gateway/session-handoff.ts) and the controller (host/controller/session-store.ts) say to each
// other about a device session, written and read here only.
//
//   SESSION_STATE   device = the session's peer; text = spi "," top "," rxTop "," saved
//                   saved: session.ts sessionSave's 9 fields, of which the 2nd is the peer in hex and the 5th
//                   the sending key's index
//   SESSION_FETCH   device = spi (3 bytes, big-endian); no text
//   SESSION_ANSWER  device = spi (3 bytes); text = "grant," outIndex "," top | "taken" | the state to resume
import { KIND_SESSION_ANSWER, KIND_SESSION_FETCH, KIND_SESSION_STATE, type Handoff } from "./frame";

export const spiBytes = (spi: number) => Uint8Array.of((spi >>> 16) & 0xff, (spi >>> 8) & 0xff, spi & 0xff);
/** The SPI a FETCH or an ANSWER names, or -1 when its device is not 3 bytes. */
export const spiOf = (b: Uint8Array) => (b.length === 3 ? (b[0] << 16) | (b[1] << 8) | b[2] : -1);

/** A gateway's report of a session: its reservation up to `top`, its replay window at `rxTop`, its saved form. */
export type SessionReport = { spi: number; top: number; rxTop: number; peer: string; outIndex: number; saved: string };

const SPI_MAX = 0xffffff;
const SAVED_FIELDS = 9;

export function sessionState(peer: Uint8Array, spi: number, top: number, rxTop: number, saved: string): Handoff {
  return { kind: KIND_SESSION_STATE, device: peer, payload: Buffer.from(`${spi},${top},${rxTop},${saved}`) };
}

export function sessionFetch(spi: number): Handoff {
  return { kind: KIND_SESSION_FETCH, device: spiBytes(spi), payload: new Uint8Array(0) };
}

export function sessionAnswer(spi: number, text: string): Handoff {
  return { kind: KIND_SESSION_ANSWER, device: spiBytes(spi), payload: Buffer.from(text) };
}

/** A SESSION_STATE's text, or undefined when it is not one (a field missing or not a number, an SPI out of range). */
export function readSessionState(text: string): SessionReport | undefined {
  const f = text.split(",");
  if (f.length !== 3 + SAVED_FIELDS) return undefined;
  const [spi, top, rxTop, outIndex] = [f[0], f[1], f[2], f[7]].map(Number);
  if (![spi, top, rxTop, outIndex].every(Number.isSafeInteger) || spi <= 0 || spi > SPI_MAX) return undefined;
  return { spi, top, rxTop, peer: f[4], outIndex, saved: f.slice(3).join(",") };
}

/** The answer that grants a session's sender its sending key `outIndex` up to `top` (as a number, or a bigint column's text). */
export function grantText(outIndex: number, top: number | string): string {
  return `grant,${outIndex},${top}`;
}

/** A grant's sending key index and top, from the answer's text split at ","; undefined when either is not a number. */
export function readGrant(f: readonly string[]): { outIndex: number; top: number } | undefined {
  const outIndex = Number(f[1]), top = Number(f[2]);
  return Number.isSafeInteger(outIndex) && Number.isSafeInteger(top) ? { outIndex, top } : undefined;
}

/**
 * The controller's answer to a report it stored as the session's newest: a grant of the top the report asks
 * for. For whoever plays the controller to a gateway (tests, benches); undefined for a malformed report.
 */
export function grantFor(report: Handoff): Handoff | undefined {
  const r = readSessionState(Buffer.from(report.payload).toString("utf8"));
  return r === undefined ? undefined : sessionAnswer(r.spi, grantText(r.outIndex, r.top));
}
