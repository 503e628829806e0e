// What the gateway process needs of its device side (terminate mode), whether the devices live on this
// thread (DeviceGateway, ./devices.ts) or are spread over worker threads by SPI (DeviceShards, ./shards.ts).
import { encodeData } from "../../firmware/runtime/messages";
import type { CommandState } from "../backbone/session-event";
import type { KeyLimits } from "../telemetry/metrics";
import type { KeyTable } from "./keytable";

/** Where a DATA message's reading starts (after its kind and id): the length of an empty one. */
export const DATA_BODY_AT = encodeData(0, new Uint8Array(0)).length;

/** Where a packet came from or goes to: a BLE connection ("ble:<address>") or the LoRa channel ("lora"). */
export type LinkAddress = string;
export const LORA: LinkAddress = "lora";

export type DownPacket = { link: LinkAddress; bytes: Uint8Array };

/** A device as an uplink names it: its name (a kid or device id in hex) and the same as bytes. */
export type DeviceRef = { readonly name: string; readonly id: Uint8Array };

/**
 * Where readings go as they are taken in: the device, the reading's id, the reading itself (body[off,
 * off + len), valid only during the call) and when it came. False when it could not be carried on (the
 * device's next copy is then taken in again).
 */
export type UplinkSink = (d: DeviceRef, id: number, body: Uint8Array, off: number, len: number, at: number) => boolean;

/** Commands held for devices (queued, not acknowledged by them) and readings held (taken in, not yet durable
 * further on), in all and for the devices holding the most (most first). */
export type DeviceQueues = { commands: number; readings: number; busiest: { device: string; commands: number; readings: number }[] };
export const BUSIEST_SHOWN = 16;

/** `into` with `q` in its place, most held first, at most BUSIEST_SHOWN long. */
export function addBusiest(into: DeviceQueues["busiest"], q: DeviceQueues["busiest"][number]): void {
  const held = q.commands + q.readings;
  if (held === 0 || (into.length >= BUSIEST_SHOWN && held <= into[into.length - 1].commands + into[into.length - 1].readings)) return;
  let i = into.length;
  while (i > 0 && into[i - 1].commands + into[i - 1].readings < held) i--;
  into.splice(i, 0, q);
  if (into.length > BUSIEST_SHOWN) into.pop();
}

/** What became of a command: queued under its message id (or refused, id 0), acknowledged by its device, or lost. */
export type CommandSink = (device: string, id: number, state: CommandState) => void;

export interface DeviceSide {
  /** Where readings go as they are taken in. */
  onUplink: UplinkSink | undefined;
  /** What became of each command (told to the controller for its console). */
  onCommand: CommandSink | undefined;
  /** Called when packets for the links became ready other than in answer to a call (a worker's answer). */
  onOutput: (() => void) | undefined;
  input(link: LinkAddress, packet: Uint8Array, now: number): void;
  connected(link: LinkAddress, now: number): void;
  poll(now: number): void;
  readonly hasOutput: boolean;
  takeOutput(): DownPacket[];
  /** holdAcks: reading `id` of `d` (as onUplink gave it) is durable: its ACK goes out with the next output. */
  confirmOf(d: DeviceRef, id: number, now: number): boolean;
  /**
   * Queues a command (under `id`, the controller's number for it, when given); whether it was queued (and
   * its message id) or refused is told to onCommand.
   */
  command(device: string, body: Uint8Array, now: number, id?: number): void;
  /** Ends every session of a device (revoked, rotated). */
  end(device: string, now: number): void;
  /** Devices with a session that can carry data now. */
  onlineCount(): number;
  /** The live session keys' use of their limits (docs/PROTOCOL.md 1.3), for the metrics. */
  keyLimits(): KeyLimits;
  /** What the devices' queues hold (for the gateway's GATEWAY_STATUS). */
  queues(): DeviceQueues;
}

/** The KEYS grant that carries the responder's static key pair (dh devices pin its public key). */
export const RESPONDER_GRANT = "*responder*";

/**
 * The KEYS messages around a connection's whole set of grants: every device the controller grants comes
 * between them, so a device a gateway holds that did not was revoked while it was away (a withdrawal goes
 * only to the gateways connected then), and is withdrawn there at the end.
 */
export const GRANTS_BEGIN = "*grants*";
export const GRANTS_END = "*granted*";

/** The responder's key pair from its grant text, or undefined for a text that is not one. */
export function responderGrant(grant: string): { S: Uint8Array; s: Uint8Array } | undefined {
  const f = /^public=([0-9a-f]{64});secret=([0-9a-f]{64})$/.exec(grant);
  return f ? { S: Uint8Array.from(Buffer.from(f[1], "hex")), s: Uint8Array.from(Buffer.from(f[2], "hex")) } : undefined;
}

/**
 * A device's KEYS grant applied to `keys` and `side`: withdrawn (an empty grant: revoked, or rotated and the
 * new keys follow), or keys rotated since those held (the withdrawal came while this gateway was away), the
 * device's live sessions end first. What is wrong with the grant's text, or "".
 */
export function applyDeviceGrant(keys: KeyTable, side: Pick<DeviceSide, "end">, device: string, grant: string, now: number): string {
  if (grant === "" || keys.rotatedAway(device, grant)) side.end(keys.peerOf(device), now);
  return keys.applyGrant(device, grant);
}
