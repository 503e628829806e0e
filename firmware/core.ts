// The board-independent core: every portable primitive and the record layer, as one bundle
// (dist/espruino/core.js, dist/lua/core.lua). Its exports are the global `sesame` on Espruino and the
// table the Lua chunk returns.
export { probe, PROBE_FAIL } from "./probe";
export { fromHex, toHex } from "./bytes";
