// Batches as the link handles them: encoded as a list of chunks to seal (long payloads are not copied),
// and decoded from the pieces a record's plaintext comes out of OpenSSL in (a message that lies within one
// piece is a view into it; only one that straddles pieces is copied together).
import { ByteQueue } from "./bytequeue";
import {
  bodySize, decodeBatch, decodeComplete, decodeMessage, FrameError, FRAME_TRUNCATED, Message, MESSAGE_PREFIX_MAX, messageExtent, messageTail,
  putBytes, uvarintSize, writeMessageHead,
} from "./frame";

/** Payloads at least this long become their own chunk of the batch instead of being copied into it. */
export const SPLICE_MIN = 4096;

/**
 * Encodes batches as lists of chunks to seal in order: the small parts are packed into one buffer, long
 * payloads are passed by reference, so a 10 MB payload is read once, by the cipher. The packing buffer is
 * reused from one batch to the next (a fresh one per batch costs page faults on every write): the chunks
 * of a batch are valid until the next call, which is enough for a caller that seals them at once.
 */
export class BatchWriter {
  private scratch = Buffer.allocUnsafe(0);

  /** `bodies[i]`, when given, is bodySize(ms[i]); messages must pass checkMessage. */
  write(ms: readonly Message[], bodies?: readonly number[]): Uint8Array[] {
    let cap = 0;
    for (let i = 0; i < ms.length; i++) {
      const body = bodies?.[i] ?? bodySize(ms[i]);
      const t = messageTail(ms[i]).length;
      cap += 1 + uvarintSize(body) + body - (t >= SPLICE_MIN ? t : 0);
    }
    if (this.scratch.length < cap) this.scratch = Buffer.allocUnsafe(Math.max(cap, 2 * this.scratch.length));
    const buf = this.scratch;
    const out: Uint8Array[] = [];
    let start = 0;
    let off = 0;
    for (let i = 0; i < ms.length; i++) {
      const m = ms[i];
      off = writeMessageHead(m, buf, off, bodies?.[i] ?? bodySize(m));
      const tail = messageTail(m);
      if (tail.length >= SPLICE_MIN) {
        if (off > start) out.push(buf.subarray(start, off));
        out.push(tail);
        start = off;
      } else {
        off = putBytes(buf, off, tail);
      }
    }
    if (off > start) out.push(buf.subarray(start, off));
    return out;
  }
}

/** One batch as chunks that stay valid (a fresh packing buffer). */
export function batchChunks(ms: readonly Message[]): Uint8Array[] {
  return new BatchWriter().write(ms);
}

/**
 * The messages of a batch that arrived in pieces, or the FrameError that stopped it (then none). Messages
 * inside a piece are decoded in place; a message that straddles pieces is gathered into one buffer first.
 */
export function decodePieces(pieces: readonly Buffer[]): Message[] | FrameError {
  if (pieces.length === 1) return decodeBatch(pieces[0]);
  const out: Message[] = [];
  const carry = new ByteQueue(); // the bytes so far of a message that started in an earlier piece
  let at = 0; // batch offset of the current piece, for errors
  for (const p of pieces) {
    let off = 0;
    if (carry.length > 0) {
      carry.push(p);
      const size = messageExtent(carry.peek(Math.min(carry.length, MESSAGE_PREFIX_MAX)));
      if (size instanceof FrameError) return new FrameError(size.code, at);
      if (size === 0 || size > carry.length) {
        at += p.length;
        continue; // the message goes on in the next piece
      }
      const m = decodeMessage(carry.take(size));
      if (m instanceof FrameError) return new FrameError(m.code, at);
      out.push(m);
      off = p.length - carry.length;
      carry.clear();
    }
    const end = decodeComplete(p, off, out);
    if (end instanceof FrameError) return new FrameError(end.code, at + end.offset);
    if (end < p.length) carry.push(p.subarray(end));
    at += p.length;
  }
  return carry.length > 0 ? new FrameError(FRAME_TRUNCATED, at - carry.length) : out;
}
