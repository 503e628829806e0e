// Cipher suites: one fixed algorithm chain each, as SVC prescribes (no per-algorithm negotiation, so there
// is nothing to downgrade). The suite is named in the handshake's protocol name, which starts the transcript.
import { FORMAT_COMPACT, FORMAT_EXTREME } from "./record/header";

export type Suite = {
  id: number;
  name: string;
  /** AEAD key bytes. */
  keyLen: number;
  /** ICV bytes appended to every record. */
  tagLen: number;
  /** AEAD nonce bytes, which is also the per-direction IV length. */
  nonceLen: number;
  /** The record format the suite is used with. */
  format: number;
  /** Records sealed under one key (q) before the sender must move to the next key. */
  confidentialityLimit: number;
  /**
   * Failed opens (v) tolerated under one key before the receiver must move to the next key. An 8-byte tag
   * makes forgery the binding limit: RFC 9147 will not run CCM_8 without such a safeguard.
   */
  integrityLimit: number;
};

/** Boards, compact format: AES-128-CCM with an 8-byte tag and 13-byte nonce (COSE/OSCORE's default). */
export const SUITE_CONSTRAINED: Suite = {
  id: 1,
  name: "SSE_X25519_AES128CCM8_SHA256",
  keyLen: 16,
  tagLen: 8,
  nonceLen: 13,
  format: FORMAT_COMPACT,
  // draft-ietf-core-oscore-key-limits, AEAD_AES_128_CCM_8 with records up to 2^8 blocks: q = 2^20, v = 2^10.
  confidentialityLimit: 1048576,
  integrityLimit: 1024,
};

/** Host backbone, extreme format: AES-256-GCM with a 16-byte tag. */
export const SUITE_BACKBONE: Suite = {
  id: 2,
  name: "SSE_X25519_AES256GCM_SHA256",
  keyLen: 32,
  tagLen: 16,
  nonceLen: 12,
  format: FORMAT_EXTREME,
  // RFC 9147 / RFC 9001 allow 2^24.5 records and 2^36 forgeries per GCM key; rekeying is a derivation,
  // so it costs nothing to stay well inside both (and inside 2^31 for portable arithmetic).
  confidentialityLimit: 16777216,
  integrityLimit: 1073741824,
};
