// Fresh device credentials and the configuration string a board is flashed with: exactly the
// "key=value;..." format firmware/runtime/config.ts deviceEndpoint() reads (hex keys, decimal numbers).
//   psk: mode=psk;order=R|I;id=<16 bytes>;psk=<32 bytes>
//   dh:  mode=dh;order=R|I;kid=<4 bytes>;secret=<device X25519 secret>;gateway=<responder public key>;slice=<n>
import { randomBytes } from "node:crypto";
import type { BoardProfile } from "../../firmware/board";
import { pskPid } from "../../firmware/handshake/psk";
import { KEY_SIZE, KID_SIZE } from "../../firmware/handshake/wire";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import { boardOrder } from "./boards";

/** Device ids are random, so they say nothing about the fleet (count, order of provisioning). */
export const DEVICE_ID_SIZE = 16;
/** The psk handshake's key: HMAC-SHA-256 keys, evolved into 32-byte successors (firmware/handshake/psk.ts). */
export const PSK_SIZE = 32;

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

export function newDeviceId(): string {
  return hex(randomBytes(DEVICE_ID_SIZE));
}

export function newKid(): string {
  return hex(randomBytes(KID_SIZE));
}

export type PskCredentials = { mode: "psk"; psk: Uint8Array; pid: string };
export type DhCredentials = { mode: "dh"; kid: string; secret: Uint8Array; publicKey: Uint8Array };

export function newPsk(): PskCredentials {
  const psk = new Uint8Array(randomBytes(PSK_SIZE));
  return { mode: "psk", psk, pid: pidOf(psk) };
}

/** The pseudonym a psk key shows on the wire (what a responder looks devices up by). */
export function pidOf(key: Uint8Array): string {
  return hex(pskPid(hostProvider, key));
}

export function newDhKeys(): DhCredentials {
  const kp = nodeKeyPair();
  if (kp.S.length !== KEY_SIZE) throw new Error("X25519 key of unexpected size");
  return { mode: "dh", kid: newKid(), secret: kp.s, publicKey: kp.S };
}

export function pskConfig(board: BoardProfile, id: string, psk: Uint8Array): string {
  return `mode=psk;order=${boardOrder(board)};id=${id};psk=${hex(psk)}`;
}

export function dhConfig(board: BoardProfile, c: DhCredentials, responderPublic: Uint8Array): string {
  return `mode=dh;order=${boardOrder(board)};kid=${c.kid};secret=${hex(c.secret)};gateway=${hex(responderPublic)};slice=${board.x25519StepsPerTick}`;
}
