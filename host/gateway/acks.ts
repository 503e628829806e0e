// The gateway's acknowledgements to a device (./devices.ts): the ids due go in one ACK record on the
// device's session; while its readings come one at a time, each in step with the last (the next id, the
// next sequence number), the ACKs of the next ones are sealed ahead in one batch on the key's reused
// contexts (ReusedCcm.sealAhead), which the session's own seal then hands out.
import { FLAG_KEY_PHASE, FORMAT_COMPACT, writeHeader } from "../../firmware/record/header";
import { encodeAck, MSG_ACK, MSG_ID_MAX } from "../../firmware/runtime/messages";
import { sessionSend, type Session } from "../../firmware/session/session";
import { ReusedCcm } from "../crypto/ccm";
import type { DeviceState } from "./device-state";

/** One-id ACKs sealed ahead at most, per device. */
const ACKS_AHEAD = 16;
/** Ids one ACK record carries at most (on LoRa each downlink costs the gateway's duty cycle too). */
const IDS_PER_ACK = 60;
/** An ACK of one id, and the headers and ACKs sealed ahead (their bytes are copied). */
const ackScratch = encodeAck([0]);
const aheadHeaders = new Uint8Array(8 * ACKS_AHEAD);
const aheadAcks = new Uint8Array(4 * ACKS_AHEAD);

/** The ACK of one id, in a scratch buffer valid until the next call (sealing copies it). */
function ackOf(id: number): Uint8Array {
  ackScratch[1] = (id >>> 16) & 0xff;
  ackScratch[2] = (id >>> 8) & 0xff;
  ackScratch[3] = id & 0xff;
  return ackScratch;
}

/**
 * The device's ACKs due, sealed on its session: one record for all of them (up to IDS_PER_ACK). An ACK of
 * one id is the ACK of each reading while they come one at a time; if its device's ids and its session's
 * sequence numbers go in step, the next ones are sealed ahead in one batch on the key's contexts.
 */
export function sendAcks(d: DeviceState, s: Session, now: number): void {
  const acks = d.acks;
  if (acks.length === 1) {
    const id = acks.pop()!; // (pop, not length = 0: that would drop the array's storage every time)
    const seq = s.out.seq.next;
    sealAhead(d, s, id, seq);
    if (!sessionSend(s, ackOf(id), now)) return;
    d.ackSeq = seq;
    d.ackId = id;
    return;
  }
  while (acks.length > 0) if (!sessionSend(s, encodeAck(acks.splice(0, IDS_PER_ACK)), now)) break;
}

/**
 * Seals the ACKs of ids id, id + 1, ... as sequence numbers seq, seq + 1, ... ahead, when the device's
 * last ACKs went in step (twice as many each time, up to ACKS_AHEAD) and seq is not already among them.
 * Only a guess: sessionSend seals what it is given, and takes the bytes from here only when they match.
 */
function sealAhead(d: DeviceState, s: Session, id: number, seq: number): void {
  const o = s.out;
  const aead = o.aead;
  if (!(aead instanceof ReusedCcm) || aead.sealedAhead(o.epoch.iv, seq) || o.policy.suite.format !== FORMAT_COMPACT) return;
  d.aheadCount = seq === d.ackSeq + 1 && id === d.ackId + 1 ? Math.min(ACKS_AHEAD, d.aheadCount * 2) : 1;
  const count = Math.min(d.aheadCount, o.seq.max - seq + 1, MSG_ID_MAX - id + 1);
  if (count <= 1) return;
  const flags = (o.epoch.index & 1) === 1 ? FLAG_KEY_PHASE : 0;
  for (let e = 0; e < count; e++) {
    writeHeader(FORMAT_COMPACT, { spi: o.spi, flags, length: 4, seqHi: 0, seq: seq + e }, aheadHeaders, 8 * e);
    const v = id + e;
    aheadAcks[4 * e] = MSG_ACK;
    aheadAcks[4 * e + 1] = (v >>> 16) & 0xff;
    aheadAcks[4 * e + 2] = (v >>> 8) & 0xff;
    aheadAcks[4 * e + 3] = v & 0xff;
  }
  aead.sealAhead(o.epoch.iv, seq, count, aheadHeaders, 8, aheadAcks, 4);
}
