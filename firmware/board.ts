// The shape of a board profile (boards/*.json). Profiles are data: adding a board is adding a file.

export type NativeCrypto = {
  /** require('crypto').SHA256 (Espruino) or crypto.hash('sha256') (NodeMCU). */
  sha256: boolean;
  /** AES-ECB/CBC/CTR through require('crypto').AES (Espruino). */
  aes: boolean;
  /** AES.ccmEncrypt / AES.ccmDecrypt (Espruino on nRF52840 builds such as Bangle.js 2). */
  aesCcm: boolean;
  /** crypto.hmac (NodeMCU). */
  hmac: boolean;
  /** X25519 in firmware (NodeMCU's sodium module). */
  x25519: boolean;
};

export type BoardProfile = {
  /** File name without .json; the artefact is dist/<target>/<name>.js|lua. */
  name: string;
  title: string;
  target: "espruino" | "lua";
  /** The `espruino` CLI board id (-b), where the board runs Espruino. */
  espruinoBoard?: string;
  chip: string;
  memory: { jsVars?: number; bytes?: number };
  storage: { code: string; state: string };
  nativeCrypto: NativeCrypto;
  radios: {
    ble?: { mtu: number };
    lora?: { region: string; dataRate: number; maxPayload: number };
  };
  handshake: "dh" | "psk";
  /** GPComp's compressor in the board's firmware: Espruino's built-in `heatshrink` module. Absent: none (NodeMCU). */
  gpcomp?: "heatshrink";
  /** Montgomery-ladder steps per tick when the board runs X25519 in slices (0: runs it in one go). */
  x25519StepsPerTick: number;
};
