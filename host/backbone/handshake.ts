// Who the gateway and the controller are to each other, as firmware endpoint configurations: the same
// handshake state machine as the boards (firmware/session/endpoint.ts), in dh mode with static X25519 keys
// on both sides, order R (the controller accepts the TCP connection and speaks first, as SVC has it). The
// gateway pins the controller's public key; the controller pins each gateway's public key under its kid.
// The resulting sessions use the backbone suite (AES-256-GCM, extreme format: records.ts).
import type { KeyPair } from "../../firmware/crypto/provider";
import { EndpointConfig } from "../../firmware/session/endpoint";
import { hostProvider, nodeKeyPair } from "../crypto/provider";
import { backbonePolicy } from "./records";

/** A gateway's backbone identity: its 4-byte key id and static X25519 key pair. */
export type GatewayIdentity = { kid: Uint8Array; keys: KeyPair };

/** The controller's pinned gateways: kid -> the gateway's static public key, undefined for a stranger. */
export type GatewayLookup = (kid: Uint8Array) => Uint8Array | undefined;

// The endpoint would restart a stale handshake on the same link by itself; on TCP the connection does
// that instead (it closes, and the gateway reconnects with a fresh handshake), so the endpoint never must.
const NEVER = Number.MAX_SAFE_INTEGER;

// Each backbone session has a TCP connection to itself, which tells its records apart; SPIs only need to
// be unique per receiver when several sessions share one link.
const noLiveSpis = (): boolean => false;

/** A fresh static key pair (for provisioning, and for tests). */
export function backboneKeyPair(): KeyPair {
  return nodeKeyPair();
}

export function gatewayEndpointConfig(me: GatewayIdentity, controllerKey: Uint8Array): EndpointConfig {
  if (me.kid.length !== 4) throw new RangeError("a gateway kid is 4 bytes");
  if (controllerKey.length !== 32) throw new RangeError("the controller's public key is 32 bytes");
  return {
    initiator: true, dh: true, responderFirst: true, p: hostProvider, policy: backbonePolicy(), sliceSteps: 0, retryMs: NEVER,
    dhI: { p: hostProvider, kid: me.kid, me: me.keys, peer: controllerKey }, dhR: undefined, pskI: undefined, pskR: undefined,
    pskStore: undefined, spiLive: noLiveSpis,
  };
}

export function controllerEndpointConfig(me: KeyPair, gateways: GatewayLookup): EndpointConfig {
  return {
    initiator: false, dh: true, responderFirst: true, p: hostProvider, policy: backbonePolicy(), sliceSteps: 0, retryMs: NEVER,
    dhI: undefined, dhR: { p: hostProvider, me, lookup: gateways }, pskI: undefined, pskR: undefined, pskStore: undefined,
    spiLive: noLiveSpis,
  };
}
