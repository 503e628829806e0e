// The entry of a board's bundle (dist/espruino/<board>.js, dist/lua/<board>.lua): the board's profile
// (which the build supplies as the global SESAME_BOARD), its crypto provider (`#hw` is firmware/hw/espruino.ts
// in JavaScript and firmware/hw/nodemcu.ts in Lua), and the endpoint API in its string form.
import { BoardProfile } from "./board";
import { boardProvider as hwProvider, Natives } from "#hw";
import { CryptoProvider } from "./crypto/provider";
import { SeqStorage } from "./session/seqstore";
import { facadeInit, memoryStorage } from "./runtime/facade";

declare const SESAME_BOARD: BoardProfile;

export const board: BoardProfile = SESAME_BOARD;

/** The board's crypto provider, from the natives its boot code passes in. */
export function boardProvider(natives: Natives): CryptoProvider {
  return hwProvider(board.nativeCrypto, natives);
}

/**
 * Boot: `sesame.init({ crypto: require("crypto"), hwRand: E.hwRand }, storage)` on Espruino,
 * `sesame.init({ crypto = crypto, sodium = sodium }, storage)` on NodeMCU. Without storage, sequence
 * reservations live in RAM (a board that must survive power loss passes its flash storage).
 * Returns the provider's description.
 */
export function init(natives: Natives, storage: SeqStorage | undefined): string {
  const p = boardProvider(natives);
  facadeInit(p, storage === undefined ? memoryStorage() : storage);
  return p.name;
}

export {
  epCreate, epFeedH, epInboxH, epInfoH, epOutH, epPollH, epReadyH, epSendH, epSetSeqH, epStartH, epTransportH,
} from "./runtime/facade";
export { fromHex, toHex } from "./bytes";
