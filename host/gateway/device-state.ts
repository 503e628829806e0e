// What the gateway keeps of a device, apart from its sessions.
//
// A *session* (firmware/session/session.ts, held by an Endpoint) is the cryptographic state of one
// handshake: keys, sequence numbers, replay windows, transports. It lives and dies with its SPI. A device
// outlives its sessions: it handshakes again after a power cycle, a lost gateway or a forgery limit, and
// what must carry over from one session to the next is here, in one object per device:
//
//   - which endpoint carries its ACKs and commands (only an authenticated record moves it), and on which
//     link it was last heard (the gateway answers there: WireGuard's roaming);
//   - the reliability layer of firmware/runtime/messages.ts: the window of reading ids already taken (so a
//     reading is delivered once across re-handshakes), the ids to acknowledge, and the commands going down;
//   - with holdAcks, the readings taken in but not yet durable further on (their ACK waits for confirm());
//   - how the gateway seals its ACKs ahead for this device (SealedAhead in host/crypto/ccm.ts).
//
// A gateway handing a device to another (issue: sessions that survive their gateway) hands over this and
// the endpoint's session; nothing else about the device is kept anywhere.
import { receiverAccept, receiverNew, Receiver, Sender, senderNew } from "../../firmware/runtime/messages";
import type { Endpoint } from "../../firmware/session/endpoint";
import type { Session } from "../../firmware/session/session";
import type { SeqStorage } from "../../firmware/session/seqstore";
import type { Handed } from "./session-handoff";

import { LinkAddress, LORA } from "./device-side";

export type DeviceState = {
  /** The device's name: its sessions' peer (a dh kid or a psk device id) in hex. */
  readonly name: string;
  /** The same name as bytes, as the backbone carries it. */
  readonly id: Uint8Array;
  /** The endpoint whose session carries the device's ACKs and commands. */
  ep: Endpoint | undefined;
  /** A session known to be this device's (the last one an authenticated record came in on). */
  session: Session | undefined;
  /** Its gateway ended it (revoked, rotated): nothing more is done for it. */
  ended: boolean;
  /** Its BLE connection, if any, and the link it was last heard on. */
  ble: LinkAddress | undefined;
  last: LinkAddress;
  /** Reading ids taken (duplicates filtered), and commands going down. */
  receiver: Receiver;
  sender: Sender;
  /** Reading ids to acknowledge with the next output. */
  acks: number[];
  /**
   * holdAcks: readings taken in and not yet confirmed durable, as id * 2, plus 1 once released (the
   * backbone could not take it: the device's next copy is taken in again). A handful at most.
   */
  held: number[] | undefined;
  /** In the gateway's list of devices with output due. */
  due: boolean;
  /** With a session handoff: what it keeps of the device's session (SessionHandoff.seen), asked before each seal. */
  handed: Handed | undefined;
  /** The last ACK of one id sealed (its sequence number and id), and how many to seal ahead next time. */
  ackSeq: number;
  ackId: number;
  aheadCount: number;
};

export type DeviceOptions = { storage: SeqStorage; commandTries: number; commandRtoMs: number; holdAcks: boolean };

export function deviceNew(name: string, o: DeviceOptions): DeviceState {
  return {
    name, id: Uint8Array.from(Buffer.from(name, "hex")), ep: undefined, session: undefined, ended: false, ble: undefined, last: LORA, receiver: receiverNew(),
    sender: senderNew(o.storage, `cmd:${name}`, 16, o.commandTries, o.commandRtoMs), acks: [], held: o.holdAcks ? [] : undefined, due: false, handed: undefined,
    ackSeq: -2, ackId: -2, aheadCount: 1,
  };
}

/** What became of a reading: carry it on (new), or not (a copy, or too old for the window). */
export const READING_NEW = 1;
export const READING_COPY = 2;
export const READING_OLD = 0;

/**
 * A DATA message with id `id` arrived: whether it is new (carry it on), and which ids are now due for an
 * ACK. Without holdAcks, every id the window knows is acknowledged at once. With it, a new reading is held
 * until confirmReading(); a copy of a held one is neither carried nor acknowledged, a copy of a released
 * one is carried again in its place, and a copy of one confirmed before is acknowledged again (only its
 * ACK was lost).
 */
export function takeReading(d: DeviceState, id: number): number {
  const r = receiverAccept(d.receiver, id);
  const held = d.held;
  if (held === undefined) {
    if (r !== READING_OLD) d.acks.push(id);
    return r;
  }
  if (r === READING_NEW) {
    held.push(id * 2);
    if (held.length > 2 * d.receiver.seen.size) forgetHeld(d);
    return r;
  }
  if (r !== READING_COPY) return r;
  const i = heldAt(held, id);
  if (i < 0) d.acks.push(id);
  else if ((held[i] & 1) === 1) {
    held[i] = id * 2; // released: this copy is carried on in its place
    d.receiver.duplicates--;
    return READING_NEW;
  }
  return r;
}

/** holdAcks: reading `id` is durable; false when it was not held (confirmed before, or forgotten). */
export function confirmReading(d: DeviceState, id: number): boolean {
  const held = d.held;
  const i = held === undefined ? -1 : heldAt(held, id);
  if (i < 0) return false;
  held![i] = held![held!.length - 1];
  held!.pop();
  d.acks.push(id);
  return true;
}

/** holdAcks: reading `id` could not be carried on; the device's next copy is taken in as new. */
export function releaseReading(d: DeviceState, id: number): void {
  const held = d.held;
  const i = held === undefined ? -1 : heldAt(held, id);
  if (i >= 0) held![i] = id * 2 + 1;
}

function heldAt(held: number[], id: number): number {
  for (let i = 0; i < held.length; i++) if (held[i] >>> 1 === id) return i;
  return -1;
}

/**
 * Held readings the receiver window has moved past: a copy of one would be refused as too old anyway,
 * and a device keeps far fewer than a window's worth unacknowledged, so these only wait for a
 * confirmation that is not coming (the controller lost them; the device has given them up).
 */
function forgetHeld(d: DeviceState): void {
  const w = d.receiver.seen;
  const held = d.held!;
  let k = 0;
  for (let i = 0; i < held.length; i++) if (w.top - (held[i] >>> 1) < w.size) held[k++] = held[i];
  held.length = k;
}
