// The entry of a board's bundle (dist/espruino/<board>.js, dist/lua/<board>.lua): the core, plus the
// board's profile, which the build supplies as the global SESAME_BOARD.
import { BoardProfile } from "./board";

declare const SESAME_BOARD: BoardProfile;

export const board: BoardProfile = SESAME_BOARD;
export * from "./core";
