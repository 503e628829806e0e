// A psk device's endpoint on the host (order I: it speaks first), for tests that drive a gateway with one.
import { Endpoint, epNew } from "../../firmware/session/endpoint";
import type { SaPolicy } from "../../firmware/session/sa";
import { hostProvider } from "../../host/crypto/provider";

/** `psk` is copied: the device evolves its own keys, as the gateway evolves its copy. */
export function pskDevice(id: Uint8Array, psk: Uint8Array, policy: SaPolicy, retryMs = 30_000): Endpoint {
  return epNew({
    initiator: true, dh: false, responderFirst: false, p: hostProvider, policy, sliceSteps: 0, retryMs, dhI: undefined, dhR: undefined,
    pskI: { p: hostProvider, id, keys: { current: Uint8Array.from(psk), previous: undefined } }, pskR: undefined, pskStore: undefined, spiLive: () => false,
  });
}
