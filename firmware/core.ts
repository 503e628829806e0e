// The board-independent core: the portable primitives and the SSE record layer, nothing a board's
// firmware could supply instead. dist/espruino/core.js defines the global `sesame`; dist/lua/core.lua
// returns the same table. (Board bundles, built from device.ts, take only what their profile needs.)
export { aesEncryptBlock, aesExpandKey } from "./crypto/aes";
export { aesBlock, ccmOpen, ccmSeal } from "./crypto/ccm";
export { sha256 } from "./crypto/sha256";
export { hmac, hmacSha256 } from "./crypto/hmac";
export { x25519, x25519Base, x25519Result, x25519Start, x25519Step } from "./crypto/x25519";
export { readHeader, writeHeader, checkHeader } from "./record/header";
export { openRecord, parseRecord, recordSize, sealRecord } from "./record/record";
export { fromHex, toHex } from "./bytes";
