// The entry of the endpoint bundles (dist/espruino/endpoints.js, dist/lua/endpoints.lua): every mode and
// role behind the string endpoint API, over a board family's crypto natives (`#hw` is firmware/hw/espruino.ts
// in JavaScript and firmware/hw/nodemcu.ts in Lua). The interop matrix runs them as device and as gateway.
// A board's own bundle is firmware/device.ts.
import { boardProvider, Natives } from "#hw";
import { Codec } from "./record/gpcomp";
import { NativeCrypto } from "./board";
import { SeqStorage } from "./session/seqstore";
import { facadeInit, memoryStorage } from "./runtime/facade";

/**
 * `sesame.init({ crypto: require("crypto"), hwRand: E.hwRand }, storage, native, require)` on Espruino,
 * `sesame.init({ crypto = crypto, sodium = sodium }, storage, native)` in Lua, where `native` says which
 * natives the board has (a profile's nativeCrypto). Without storage, sequence reservations live in RAM;
 * without `require`, there is no GPComp codec (Lua never has one). Returns the provider's description.
 */
export function init(natives: Natives, storage: SeqStorage | undefined, native: NativeCrypto, req: ((this: void, name: string) => unknown) | undefined): string {
  const p = boardProvider(native, natives);
  facadeInit(p, storage === undefined ? memoryStorage() : storage, req === undefined ? undefined : (req("heatshrink") as Codec));
  return p.name;
}

export {
  epCreate, epFeedH, epInboxH, epInfoH, epOutH, epPollH, epReadyH, epRestoreH, epSendH, epSetSeqH, epStartH, epTransportH,
} from "./runtime/facade";
export { fromHex, toHex } from "./bytes";
