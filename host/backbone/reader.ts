// The receiving half of a backbone connection after the handshake: splits the TCP byte stream into records
// by their headers and opens each one while its bytes arrive, so a 10 MB record is decrypted in the pieces
// TCP delivers (still in cache) instead of being assembled first. Nothing is handed on before the record's
// tag verified.
//
//   HEADER (17 bytes; SPI 0 = the 16-byte error packet) -> BODY (Length bytes) -> TAG (16 bytes) -> HEADER
//
// The reader stops for good at the first bad header, rejected record or error packet; the connection
// then ends (there is no resynchronising a byte stream an attacker has touched).
import { ERROR_PACKET_SIZE, isErrorPacket } from "../../firmware/handshake/wire";
import { REJECT_NAMES } from "../../firmware/record/header";
import { BACKBONE_HEADER, BACKBONE_TAG, backbonePayloadLength } from "./records";

/** Where one record's bytes go: RecordOpener, or anything that treats them the same way. */
export type RecordSink = {
  readonly flags: number;
  update(ciphertext: Buffer): void;
  /** The plaintext pieces, or a REJECT_* code. */
  finish(tag: Buffer): Buffer[] | number;
};

export type ReaderHandlers = {
  /** A sink for the record with this header (the buffer is reused: copy what you keep), or a REJECT_* code. */
  begin(header: Buffer): RecordSink | number;
  record(flags: number, plaintext: Buffer[]): void;
  /** The stream is unusable from here: why (for logs and tests; never sent). */
  fail(why: string): void;
  /** The peer sent SVC's error packet. */
  aborted(): void;
};

const READ_HEADER = 0;
const READ_BODY = 1;
const READ_TAG = 2;
const READ_STOPPED = 3;

export class RecordReader {
  private state = READ_HEADER;
  private readonly header = Buffer.alloc(BACKBONE_HEADER);
  private readonly tag = Buffer.alloc(BACKBONE_TAG);
  private fill = 0; // bytes of header or tag gathered so far
  private left = 0; // payload bytes of the current record still to come
  private sink: RecordSink | undefined;

  constructor(private readonly maxPayload: number, private readonly h: ReaderHandlers) {}

  get stopped(): boolean { return this.state === READ_STOPPED; }

  stop(): void {
    this.state = READ_STOPPED;
    this.sink = undefined;
  }

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && this.state !== READ_STOPPED) {
      if (this.state === READ_HEADER) off = this.readHeader(chunk, off);
      else if (this.state === READ_BODY) {
        const n = Math.min(this.left, chunk.length - off);
        this.sink!.update(chunk.subarray(off, off + n));
        this.left -= n;
        off += n;
        if (this.left === 0) this.state = READ_TAG;
      } else off = this.readTag(chunk, off);
    }
  }

  private readHeader(chunk: Buffer, off: number): number {
    const n = Math.min(BACKBONE_HEADER - this.fill, chunk.length - off);
    chunk.copy(this.header, this.fill, off, off + n);
    this.fill += n;
    off += n;
    if (this.fill >= 4 && this.header.readUInt32BE(0) === 0) {
      // SPI 0 cannot start a record: it is the error packet, one byte shorter than a header.
      if (this.fill < ERROR_PACKET_SIZE) return off;
      this.stop();
      if (isErrorPacket(this.header.subarray(0, ERROR_PACKET_SIZE))) this.h.aborted();
      else this.h.fail("record framing: SPI 0");
      return off;
    }
    if (this.fill < BACKBONE_HEADER) return off;
    this.fill = 0;
    const length = backbonePayloadLength(this.header, this.maxPayload);
    if (length < 0) return this.failed("record framing: " + REJECT_NAMES[-length], off);
    const sink = this.h.begin(this.header);
    if (typeof sink === "number") return this.failed("record rejected: " + REJECT_NAMES[sink], off);
    this.sink = sink;
    this.left = length;
    this.state = length > 0 ? READ_BODY : READ_TAG;
    return off;
  }

  private readTag(chunk: Buffer, off: number): number {
    const n = Math.min(BACKBONE_TAG - this.fill, chunk.length - off);
    chunk.copy(this.tag, this.fill, off, off + n);
    this.fill += n;
    off += n;
    if (this.fill < BACKBONE_TAG) return off;
    this.fill = 0;
    const sink = this.sink!;
    this.sink = undefined;
    this.state = READ_HEADER;
    const plain = sink.finish(this.tag);
    if (typeof plain === "number") return this.failed("record rejected: " + REJECT_NAMES[plain], off);
    this.h.record(sink.flags, plain);
    return off;
  }

  private failed(why: string, off: number): number {
    this.stop();
    this.h.fail(why);
    return off;
  }
}
