// Batches as the link receives them: decoded from the pieces a record's plaintext comes out of OpenSSL in
// (a message that lies within one piece is a view into it; only one that straddles pieces is copied
// together). The sending side encodes messages as it queues them (queue.ts).
import { ByteQueue } from "./bytequeue";
import { decodeBatch, decodeComplete, decodeMessage, FrameError, FRAME_TRUNCATED, Message, MESSAGE_PREFIX_MAX, messageExtent } from "./frame";

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
