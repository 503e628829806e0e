// The backbone's record path: AES-256-GCM records in the extreme format (17-byte header, 16-byte tag),
// sealed and opened with node:crypto on the state of a firmware Session (firmware/session/sa.ts), so the
// key schedule, the sequence numbers and the key updates are the session's own. What differs from the
// portable path (sealRecord / inboundOpen) is only the handling of bytes, for multi-megabyte payloads:
//   - a record is sealed from a list of chunks and comes out as a list [header, ciphertext..., tag] for one
//     writev, so a bulk payload is never copied into a batch buffer or into the record (the portable path
//     copies byte by byte, which costs more than the AES itself at 10 MB);
//   - opening reads the header in place and decrypts a view of the ciphertext.
// Records sealed here open with the portable path and the other way round (test/host/backbone/records.test.ts).
//
// The backbone runs over TCP: records arrive in order, exactly once, so the receiver demands strictly
// increasing sequence numbers and never needs a late key; after the sender moves to its next key, no record
// under the previous one can follow. Any record that fails to open ends the connection (the caller aborts),
// so the forgery limit of the suite is never approached.
import { createCipheriv, createDecipheriv } from "node:crypto";
import { wipe } from "../../firmware/bytes";
import {
  FLAG_KEY_PHASE, FLAGS_KNOWN, FORMAT_EXTREME, HEADER_SIZE, REJECT_AUTH, REJECT_FLAGS, REJECT_LENGTH, REJECT_OVERLONG, REJECT_SEQ,
  REJECT_SPI, REJECT_TRUNCATED,
} from "../../firmware/record/header";
import { epochKeys, EpochKeys, nextTrafficSecret } from "../../firmware/session/keys";
import { replayNew, strictAccept, strictCheck, strictNew } from "../../firmware/session/replay";
import { Inbound, makeAead, outboundRekey, SaPolicy } from "../../firmware/session/sa";
import { seqTake } from "../../firmware/session/seqstore";
import { Session, STATE_OPEN } from "../../firmware/session/session";
import { SUITE_BACKBONE } from "../../firmware/suite";
import { hostProvider } from "../crypto/provider";
import { nodeGcm } from "../crypto/aead";

export const BACKBONE_HEADER = HEADER_SIZE[FORMAT_EXTREME]; // 17
export const BACKBONE_TAG = SUITE_BACKBONE.tagLen; // 16
const CIPHER = "aes-256-gcm";

/** Rekey by time as well as by volume (2^24 records per key, the suite's limit). */
export const BACKBONE_REKEY_MS = 120_000;
/** Sequence numbers reserved per (no-op) storage write; the store only matters for sessions that are restored. */
const SEQ_BLOCK = 1 << 30;

/**
 * The SA policy of a backbone session: suite `backbone` (AES-256-GCM, extreme format) with OpenSSL's GCM,
 * stream-link replay rules, and no sequence storage. Nothing has to survive a restart: a backbone session
 * never outlives its TCP connection, and every connection makes a new handshake, so new keys; a sequence
 * number is never reused under a key because a key is never used by more than one process lifetime.
 */
export function backbonePolicy(): SaPolicy {
  return {
    suite: SUITE_BACKBONE, p: hostProvider, aead: (key) => nodeGcm(key), rekeyAfterMs: BACKBONE_REKEY_MS, datagram: false,
    windowSize: 64, lateKeyMs: 0, seqBlock: SEQ_BLOCK, store: { read: () => undefined, write: () => {} }, codec: undefined, compress: false,
  };
}

function nonce(e: EpochKeys, seq: number): Buffer {
  // iv XOR the 64-bit sequence number, right-aligned (docs/PROTOCOL.md 1.4); seqHi is always 0 here.
  const n = Buffer.from(e.iv);
  n.writeUInt32BE((n.readUInt32BE(8) ^ seq) >>> 0, 8);
  return n;
}

/**
 * Plaintext and ciphertext go through OpenSSL in slices of at most this size (TCP's read size): the output
 * of each update() is a fresh buffer, and at this size it comes from the allocator's reused memory and
 * stays in cache (measured: 1.5 to 2 times the throughput of one update over a megabyte; 16 KiB slices
 * cost more calls for no gain).
 */
export const CIPHER_SLICE = 64 << 10;

/**
 * Seals the concatenation of `chunks` into one record sent on `s`; returns the record as
 * [header, ciphertext parts..., tag] (write them in order), or undefined when the session is closed or
 * the payload longer than `maxPayload`.
 */
export function sealChunks(s: Session, chunks: readonly Uint8Array[], flags: number, now: number, maxPayload: number): Buffer[] | undefined {
  if (s.state !== STATE_OPEN) return undefined;
  let length = 0;
  for (const c of chunks) length += c.length;
  if (length > maxPayload) return undefined;
  // The same steps as outboundSeal: move to the next key at the suite's limit or after the interval.
  const o = s.out;
  if (o.sealed >= o.policy.suite.confidentialityLimit || now - o.startedAt >= o.policy.rekeyAfterMs) outboundRekey(o, now);
  let seq = seqTake(o.policy.store, o.seq);
  if (seq < 0) {
    outboundRekey(o, now);
    seq = seqTake(o.policy.store, o.seq);
  }
  const phase = (o.epoch.index & 1) === 1 ? FLAG_KEY_PHASE : 0;
  const header = Buffer.allocUnsafe(BACKBONE_HEADER);
  header.writeUInt32BE(o.spi >>> 0, 0);
  header[4] = (flags & 0xbf) | phase;
  header.writeUInt32BE(length, 5);
  header.writeUInt32BE(0, 9);
  header.writeUInt32BE(seq, 13);
  const c = createCipheriv(CIPHER, o.epoch.key, nonce(o.epoch, seq), { authTagLength: BACKBONE_TAG });
  c.setAAD(header);
  const out = [header];
  for (const chunk of chunks) {
    for (let off = 0; off < chunk.length; off += CIPHER_SLICE) out.push(c.update(chunk.subarray(off, off + CIPHER_SLICE)));
  }
  c.final();
  out.push(c.getAuthTag());
  o.sealed++;
  s.sent++;
  return out;
}

/**
 * What a stream reader needs to know from a record's first bytes: the payload length (the record is
 * BACKBONE_HEADER + length + BACKBONE_TAG bytes), or minus a REJECT_* code for a header no backbone record
 * has. `h` holds at least BACKBONE_HEADER bytes.
 */
export function backbonePayloadLength(h: Buffer, maxPayload: number): number {
  if ((h[4] & FLAGS_KNOWN) !== h[4]) return -REJECT_FLAGS;
  const length = h.readUInt32BE(5);
  return length > maxPayload ? -REJECT_LENGTH : length;
}

export type OpenedRecord = { flags: number; payload: Buffer };

type RxKey = Inbound["cur"];

/**
 * One record being opened as its bytes arrive: the header chose the key, update() decrypts the payload in
 * the pieces it comes in, finish() checks the tag. The plaintext is handed out only if the tag verifies;
 * until then nothing in the session has moved.
 */
export class RecordOpener {
  readonly flags: number;
  private readonly parts: Buffer[] = [];
  private readonly d;
  private constructor(
    private readonly s: Session,
    private readonly k: RxKey,
    private readonly nextSecret: Uint8Array | undefined,
    private readonly seq: number,
    header: Buffer,
  ) {
    this.flags = header[4];
    this.d = createDecipheriv(CIPHER, k.epoch.key, nonce(k.epoch, seq), { authTagLength: BACKBONE_TAG });
    this.d.setAAD(header);
  }

  /**
   * Starts opening the record whose 17-byte header this is; a REJECT_* code for one that cannot be ours.
   * A KEY_PHASE that differs from the current key's means the sender moved on: the next key is derived,
   * and kept only if the record opens under it.
   */
  static begin(s: Session, header: Buffer): RecordOpener | number {
    if (s.state !== STATE_OPEN) return REJECT_SPI;
    const inb = s.inb;
    const flags = header[4];
    if ((flags & FLAGS_KNOWN) !== flags) return REJECT_FLAGS;
    if (header.readUInt32BE(0) !== inb.spi) return REJECT_SPI;
    if (header.readUInt32BE(9) !== 0) return REJECT_SEQ; // our senders stay below 2^31 per key (sa.ts maxSeq)
    const seq = header.readUInt32BE(13);
    const phase = (flags & FLAG_KEY_PHASE) !== 0 ? 1 : 0;
    let k: RxKey = inb.cur;
    let nextSecret: Uint8Array | undefined;
    if (phase !== (inb.cur.epoch.index & 1)) {
      nextSecret = nextTrafficSecret(inb.policy.p, inb.secret);
      const epoch = epochKeys(inb.policy.p, nextSecret, inb.cur.epoch.index + 1, inb.policy.suite);
      k = { epoch, aead: makeAead(inb.policy, epoch.key), window: replayNew(inb.policy.windowSize), strict: strictNew(), failures: 0 };
    }
    if (!strictCheck(k.strict, seq)) {
      inb.replays++;
      s.rejected++;
      if (nextSecret !== undefined) wipe(nextSecret);
      return REJECT_SEQ;
    }
    return new RecordOpener(s, k, nextSecret, seq, Buffer.from(header));
  }

  /** Decrypts the next piece of the payload (kept until finish() vouches for it). */
  update(ciphertext: Buffer): void {
    for (let off = 0; off < ciphertext.length; off += CIPHER_SLICE) {
      this.parts.push(this.d.update(ciphertext.subarray(off, off + CIPHER_SLICE)));
    }
  }

  /** Checks the tag: the plaintext pieces, or REJECT_AUTH (then the pieces are dropped). */
  finish(tag: Buffer): Buffer[] | number {
    const { s, k } = this;
    const inb = s.inb;
    this.d.setAuthTag(tag);
    try {
      this.d.final(); // OpenSSL compares the tag in constant time
    } catch {
      inb.authFailures++;
      k.failures++;
      s.rejected++;
      this.parts.length = 0;
      if (this.nextSecret !== undefined) wipe(this.nextSecret);
      return REJECT_AUTH;
    }
    strictAccept(k.strict, this.seq);
    if (this.nextSecret !== undefined) {
      // No late records on a stream: the previous key goes at once.
      if (inb.prev !== undefined) wipe(inb.prev.epoch.key);
      inb.prev = undefined;
      wipe(inb.cur.epoch.key);
      wipe(inb.secret);
      inb.secret = this.nextSecret;
      inb.cur = k;
      inb.rekeys++;
    }
    s.confirmed = true;
    s.received++;
    return this.parts;
  }
}

/** Opens one whole record on `s` (the streaming opener in one go): flags and payload, or a REJECT_* code. */
export function openRecord(s: Session, rec: Buffer): OpenedRecord | number {
  if (rec.length < BACKBONE_HEADER + BACKBONE_TAG) return REJECT_TRUNCATED;
  const length = rec.readUInt32BE(5);
  const want = BACKBONE_HEADER + length + BACKBONE_TAG;
  if (rec.length !== want) return rec.length < want ? REJECT_TRUNCATED : REJECT_OVERLONG;
  const o = RecordOpener.begin(s, rec.subarray(0, BACKBONE_HEADER));
  if (typeof o === "number") return o;
  o.update(rec.subarray(BACKBONE_HEADER, BACKBONE_HEADER + length));
  const parts = o.finish(rec.subarray(BACKBONE_HEADER + length));
  if (typeof parts === "number") return parts;
  return { flags: o.flags, payload: parts.length === 1 ? parts[0] : Buffer.concat(parts) };
}
