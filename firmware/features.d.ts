// Build-time features. A board's bundle carries only what its profile uses: the Espruino build replaces each
// name with a constant (esbuild `define`), so esbuild drops the code behind a `false` and every function
// only it reached (a psk board carries no X25519, a board with native AES no portable AES). The Lua build
// sets them in its prelude (TypeScriptToLua does not prune). Node runs the source with every feature
// (firmware/target/js.ts sets the defaults).

/** The `dh` handshake (X25519). */
declare const SESAME_DH: boolean;
/** The `psk` handshake. */
declare const SESAME_PSK: boolean;
/** The responder (gateway) role: boards are initiators only. */
declare const SESAME_RESPONDER: boolean;
/** Portable SHA-256 (false when the board's firmware has it natively). */
declare const SESAME_PORTABLE_SHA256: boolean;
/** Portable AES (false when the board's firmware has AES-ECB natively). */
declare const SESAME_PORTABLE_AES: boolean;
/** The BLE link (firmware/runtime/links.ts). */
declare const SESAME_BLE: boolean;
/** The LoRa link. */
declare const SESAME_LORA: boolean;
/**
 * What only the host's records use: the large and extreme formats (boards seal and open compact records
 * only) and the strictly-increasing sequence check of stream links (boards' links are datagrams).
 */
declare const SESAME_HOST_RECORDS: boolean;
