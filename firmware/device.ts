// The entry of a board's bundle (dist/espruino/<board>.js, dist/lua/<board>.lua): the core, the board's
// profile (which the build supplies as the global SESAME_BOARD) and the board's crypto provider (`#hw` is
// firmware/hw/espruino.ts in JavaScript and firmware/hw/nodemcu.ts in Lua).
import { BoardProfile } from "./board";
import { boardProvider as hwProvider, Natives } from "#hw";
import { CryptoProvider } from "./crypto/provider";

declare const SESAME_BOARD: BoardProfile;

export const board: BoardProfile = SESAME_BOARD;

/** The board's crypto provider, from the natives its boot code passes in. */
export function boardProvider(natives: Natives): CryptoProvider {
  return hwProvider(board.nativeCrypto, natives);
}

export * from "./core";
