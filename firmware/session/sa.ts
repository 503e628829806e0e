// Security associations: one per direction of a session. The sender's SA seals records and moves to the
// next key by itself (no message) before the sequence space, the suite's usage limit or the rekey interval
// runs out; the receiver's SA opens them, follows the KEY_PHASE bit to the next key, keeps the previous
// key only briefly for late records, and retires a key after too many forgery attempts
// (docs/PROTOCOL.md section 3).
import { Bytes } from "#target";
import { wipe } from "../bytes";
import { CryptoProvider } from "../crypto/provider";
import { FLAG_KEY_PHASE, FORMAT_COMPACT, Header, MAX_SEQ_COMPACT, REJECT_AUTH, REJECT_SEQ, REJECT_SPI } from "../record/header";
import { Codec } from "../record/gpcomp";
import { Aead, openParsed, Opened, parseRecord, sealRecord } from "../record/record";
import { Suite } from "../suite";
import { epochKeys, EpochKeys, nextTrafficSecret } from "./keys";
import { replayAccept, replayCheck, replayNew, ReplayWindow, strictAccept, strictCheck, strictNew, StrictCounter } from "./replay";
import { formatDecimal, seqOpen, SeqCounter, SeqStorage, seqTake } from "./seqstore";

export type SaPolicy = {
  suite: Suite;
  p: CryptoProvider;
  /** The suite's AEAD for a key; CCM from the provider when absent (the host passes AES-GCM for backbone). */
  aead: ((this: void, key: Bytes) => Aead) | undefined;
  /** Move to the next key after this long (ms), whatever the volume. */
  rekeyAfterMs: number;
  /** Datagram links get a sliding window; stream links demand strictly increasing numbers. */
  datagram: boolean;
  windowSize: number;
  /** How long a receiver keeps the previous key for late records (ms). */
  lateKeyMs: number;
  /** Sequence numbers reserved per storage write (OSCORE B.1.1's K). */
  seqBlock: number;
  /** Where sequence reservations are persisted; survives restarts on a board. */
  store: SeqStorage;
  /** GPComp's heatshrink (firmware/record/gpcomp.ts); undefined: records with the GPComp bit are refused. */
  codec: Codec | undefined;
  /** Compress application payloads that shrink (needs `codec`, and a peer that has one: docs/PROTOCOL.md 1.7). */
  compress: boolean;
};

export type Outbound = {
  policy: SaPolicy;
  /** The SPI the peer allocated for this direction. */
  spi: number;
  secret: Bytes;
  epoch: EpochKeys;
  /** Held on the host and on boards with portable AES only: see `keyAead`. */
  aead: Aead;
  seq: SeqCounter;
  sealed: number;
  startedAt: number;
  /** Names this SA's sequence reservations in storage, one counter per key. */
  tag: string;
};

type RxKey = { epoch: EpochKeys; aead: Aead; window: ReplayWindow; strict: StrictCounter; failures: number };

export type Inbound = {
  policy: SaPolicy;
  spi: number;
  secret: Bytes;
  cur: RxKey;
  prev: RxKey | undefined;
  prevUntil: number;
  /** Set when the current key has reached its forgery limit: the session asks the peer to move on. */
  wantRekey: boolean;
  /** Records that came under the current key while it was retired, or retired it: each may be answered with a KEY_UPDATE request. */
  onRetired: number;
  /** Forgery attempts against the next key, made before the peer moved to it: they count against it too. */
  nextFailures: number;
  authFailures: number;
  replays: number;
  rekeys: number;
};

/** The suite's AEAD under `key`. */
export function makeAead(policy: SaPolicy, key: Bytes): Aead {
  if (policy.aead !== undefined) return policy.aead(key);
  return policy.p.ccm(key, policy.suite.tagLen, policy.suite.nonceLen);
}

// A board with native AES makes a key's AEAD for each record it seals or opens rather than holding one per
// key: on Espruino an AEAD object is 8 JsVars, a session holds three keys at its peak (sending, receiving, and
// the previous receiving key for late records), and making one over the native AES costs no more than its
// object. Where AES is portable making one expands the key schedule, so those boards hold theirs, as the host does.
function heldAead(policy: SaPolicy, epoch: EpochKeys): Aead {
  return SESAME_HOST_RECORDS || SESAME_PORTABLE_AES ? makeAead(policy, epoch.key) : (undefined as unknown as Aead);
}

function keyAead(policy: SaPolicy, held: Aead, epoch: EpochKeys): Aead {
  return SESAME_HOST_RECORDS || SESAME_PORTABLE_AES ? held : makeAead(policy, epoch.key);
}

function maxSeq(suite: Suite): number {
  // Large and extreme formats could count further; portable integers stop at 2^31, and the usage limit
  // (2^24 records for the backbone suite) ends an epoch long before.
  return suite.format === FORMAT_COMPACT ? MAX_SEQ_COMPACT : 2147483646;
}

function openCounter(policy: SaPolicy, tag: string, index: number): SeqCounter {
  return seqOpen(policy.store, "sq" + tag + ":" + formatDecimal(index), policy.seqBlock, maxSeq(policy.suite));
}

/**
 * The sending SA at key index `index`, whose traffic secret is `secret`. `tag` names its sequence
 * reservations in storage (session and direction), so a restarted board resumes past every number it may
 * have used under each key.
 */
export function outboundNew(policy: SaPolicy, secret: Bytes, index: number, spi: number, tag: string, now: number): Outbound {
  const epoch = epochKeys(policy.p, secret, index, policy.suite);
  return {
    policy: policy, spi: spi, secret: secret, epoch: epoch, aead: heldAead(policy, epoch),
    seq: openCounter(policy, tag, index), sealed: 0, startedAt: now, tag: tag,
  };
}

/** Moves the sender to the next key: the old secret and key are erased; the sequence restarts at 0. */
export function outboundRekey(o: Outbound, now: number): void {
  const next = nextTrafficSecret(o.policy.p, o.secret);
  wipe(o.secret);
  wipe(o.epoch.key);
  o.secret = next;
  o.epoch = epochKeys(o.policy.p, next, o.epoch.index + 1, o.policy.suite);
  o.aead = heldAead(o.policy, o.epoch);
  o.seq = openCounter(o.policy, o.tag, o.epoch.index);
  o.sealed = 0;
  o.startedAt = now;
}

/** Seals one payload; returns the record, or a REJECT_* code when it cannot be sent (too long). */
export function outboundSeal(o: Outbound, payload: Bytes, flags: number, now: number): Bytes | number {
  if (o.sealed >= o.policy.suite.confidentialityLimit || now - o.startedAt >= o.policy.rekeyAfterMs) outboundRekey(o, now);
  let seq = seqTake(o.policy.store, o.seq);
  if (seq < 0) {
    outboundRekey(o, now);
    seq = seqTake(o.policy.store, o.seq);
  }
  const phase = (o.epoch.index & 1) === 1 ? FLAG_KEY_PHASE : 0;
  const r = sealRecord(o.policy.suite.format, keyAead(o.policy, o.aead, o.epoch), o.epoch.iv, o.spi, (flags & 0xbf) | phase, 0, seq, payload);
  if (typeof r !== "number") o.sealed = o.sealed + 1;
  return r;
}

// `strict` exists only where stream links do (the host: SESAME_HOST_RECORDS); a board's links are datagrams,
// and its bundle never reads it.
function rxKey(policy: SaPolicy, epoch: EpochKeys): RxKey {
  return { epoch: epoch, aead: heldAead(policy, epoch), window: replayNew(policy.windowSize), strict: SESAME_HOST_RECORDS ? strictNew() : (undefined as unknown as StrictCounter), failures: 0 };
}

/** The receiving SA at key index `index`, whose traffic secret is `secret`; `spi` is the one we allocated. */
export function inboundNew(policy: SaPolicy, secret: Bytes, index: number, spi: number): Inbound {
  return {
    policy: policy, spi: spi, secret: secret, cur: rxKey(policy, epochKeys(policy.p, secret, index, policy.suite)), prev: undefined,
    prevUntil: 0, wantRekey: false, onRetired: 0, nextFailures: 0, authFailures: 0, replays: 0, rekeys: 0,
  };
}

function fresh(policy: SaPolicy, k: RxKey, seq: number): boolean {
  return !SESAME_HOST_RECORDS || policy.datagram ? replayCheck(k.window, seq) : strictCheck(k.strict, seq);
}

function markSeen(policy: SaPolicy, k: RxKey, seq: number): void {
  if (!SESAME_HOST_RECORDS || policy.datagram) replayAccept(k.window, seq);
  else strictAccept(k.strict, seq);
}

function dropPrev(inb: Inbound): void {
  if (inb.prev !== undefined) wipe(inb.prev.epoch.key);
  inb.prev = undefined;
}

/** Tries one key: replay check, then the AEAD. Nothing changes but the counters unless the record opens. */
function tryKey(inb: Inbound, k: RxKey, h: Header, datagram: Bytes, isNext: boolean): Opened | number {
  const policy = inb.policy;
  if (!fresh(policy, k, h.seq)) {
    inb.replays = inb.replays + 1;
    return REJECT_SEQ;
  }
  // A key retired at its forgery limit opens nothing more: the peer must move to the next one.
  if (k === inb.cur && inb.wantRekey) {
    inb.onRetired = inb.onRetired + 1;
    return REJECT_AUTH;
  }
  const opened = openParsed(policy.suite.format, keyAead(policy, k.aead, k.epoch), k.epoch.iv, h, datagram);
  if (typeof opened === "number") {
    inb.authFailures = inb.authFailures + 1;
    k.failures = k.failures + 1;
    if (isNext) inb.nextFailures = inb.nextFailures + 1;
    if (k === inb.cur && k.failures >= policy.suite.integrityLimit) {
      inb.wantRekey = true;
      inb.onRetired = inb.onRetired + 1;
    }
    return opened;
  }
  markSeen(policy, k, h.seq);
  return opened;
}

/**
 * Opens one datagram for this SA. Cheap checks (format, SPI, replay window) come before the AEAD; nothing
 * moves (window, key) until a record authenticates, so forgeries change only the failure counters.
 * A record whose KEY_PHASE differs from the current key's is a late one under the previous key or the first
 * under the next: the previous key is tried first while it is kept, then the next.
 */
export function inboundOpen(inb: Inbound, datagram: Bytes, now: number): Opened | number {
  const policy = inb.policy;
  const h = parseRecord(policy.suite.format, policy.suite.tagLen, datagram);
  if (typeof h === "number") return h;
  if (h.spi !== inb.spi) return REJECT_SPI;
  if (inb.prev !== undefined && now >= inb.prevUntil) dropPrev(inb);
  const phase = (h.flags & FLAG_KEY_PHASE) !== 0 ? 1 : 0;
  if (phase === (inb.cur.epoch.index & 1)) return tryKey(inb, inb.cur, h, datagram, false);
  if (inb.prev !== undefined && phase === (inb.prev.epoch.index & 1)) {
    const late = tryKey(inb, inb.prev, h, datagram, false);
    if (typeof late !== "number") return late;
  }
  // The sender has moved on: derive the next key and try it, committing only if the record opens.
  const nextSecret = nextTrafficSecret(policy.p, inb.secret);
  const k = rxKey(policy, epochKeys(policy.p, nextSecret, inb.cur.epoch.index + 1, policy.suite));
  const opened = tryKey(inb, k, h, datagram, true);
  if (typeof opened === "number") {
    wipe(nextSecret);
    wipe(k.epoch.key);
    return opened;
  }
  dropPrev(inb);
  inb.prev = inb.cur;
  inb.prevUntil = now + policy.lateKeyMs;
  wipe(inb.secret);
  inb.secret = nextSecret;
  inb.cur = k;
  k.failures = inb.nextFailures;
  inb.nextFailures = 0;
  inb.wantRekey = k.failures >= policy.suite.integrityLimit;
  inb.rekeys = inb.rekeys + 1;
  return opened;
}
