// GPComp on the host: heatshrink with Espruino's parameters, from the `espruino` package (EspruinoTools'
// libs/heatshrink.js: the heatshrink C library compiled to WebAssembly by Espruino's author with
// "heatshrink_config.h matches that of Espruino", what the espruino CLI compresses uploads with). The same C
// code as the boards' `require("heatshrink")`, so both sides make and accept the same bytes; the vector
// suite checks that against the real interpreter (test/vectors/gpcomp.json).
import { createRequire } from "node:module";
import type { Codec } from "../../firmware/record/gpcomp";

type HostHeatshrink = { compress(data: Uint8Array): Uint8Array; decompress(data: Uint8Array): Uint8Array };

const wasm = createRequire(import.meta.url)("espruino/libs/heatshrink.js") as HostHeatshrink;

/**
 * GPComp's codec on the host, with the interface of Espruino's module (bytes in, ArrayBuffer out). Its
 * `decompress`, like the board's, sizes the output in a first pass and then writes it whole, however large:
 * gpcompUnpack sizes the bit stream itself first and refuses more than GPCOMP_MAX_PLAIN bytes.
 */
export const hostCodec: Codec = {
  compress: (data) => copy(wasm.compress(Uint8Array.from(data))),
  decompress: (data) => copy(wasm.decompress(Uint8Array.from(data))),
};

function copy(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
