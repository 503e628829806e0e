// Generates test/vectors/record.json: SSE header and record vectors computed independently of the
// firmware code (headers packed with Buffer, records sealed with node:crypto), so the firmware's codec
// on every target is checked against a second implementation. Run: tsx scripts/vectors/record.ts
import { createCipheriv } from "node:crypto";
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

export type Fields = { spi: number; flags: number; length: number; seq: bigint };
const SIZE = [8, 13, 17];

export function pack(format: number, f: Fields): Buffer {
  const b = Buffer.alloc(SIZE[format]);
  if (format === 0) {
    b.writeUIntBE(f.spi, 0, 3);
    b[3] = f.flags;
    b.writeUInt32BE(((f.length << 20) | Number(f.seq)) >>> 0, 4);
  } else {
    b.writeUInt32BE(f.spi, 0);
    b[4] = f.flags;
    b.writeUInt32BE(f.length, 5);
    if (format === 1) b.writeUInt32BE(Number(f.seq), 9);
    else b.writeBigUInt64BE(f.seq, 9);
  }
  return b;
}

const h8 = (n: number | bigint) => n.toString(16).padStart(8, "0");
export function fieldArg(f: Fields): string {
  return [h8(f.spi), h8(f.flags), h8(f.length), h8(f.seq >> 32n), h8(f.seq & 0xffffffffn)].join(".");
}

export function seal(key: Buffer, iv: Buffer, f: Fields, payload: Buffer): Buffer {
  const header = pack(0, { ...f, length: payload.length });
  const nonce = Buffer.from(iv);
  const seq = Buffer.alloc(8);
  seq.writeBigUInt64BE(f.seq);
  for (let i = 0; i < 8; i++) nonce[nonce.length - 8 + i] ^= seq[i];
  const c = createCipheriv("aes-128-ccm", key, nonce, { authTagLength: 8 });
  c.setAAD(header, { plaintextLength: payload.length });
  const body = c.update(payload);
  c.final();
  return Buffer.concat([header, body, c.getAuthTag()]);
}

// Writes the file only when run, so scripts/vectors/gpcomp.ts can seal with the same packing.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) generate();

function generate(): void {
  const cases: object[] = [];
  const add = (name: string, op: string, args: string[], out: string) => cases.push({ name, op, args, out });

  // Headers at the field limits, and the values just past them.
  const headers: [string, number, Fields][] = [
    ["compact, all fields at their maximum", 0, { spi: 0xffffff, flags: 0xf0, length: 4095, seq: 0xfffffn }],
    ["compact, smallest data SPI, empty payload", 0, { spi: 1, flags: 0, length: 0, seq: 0n }],
    ["compact, key phase set", 0, { spi: 0x123456, flags: 0x40, length: 20, seq: 0x54321n }],
    ["large, all fields at their maximum", 1, { spi: 0xffffffff, flags: 0x80, length: 0xffffffff, seq: 0xffffffffn }],
    ["large, mixed", 1, { spi: 0x89abcdef, flags: 0x20, length: 1024, seq: 0x80000001n }],
    ["extreme, sequence 2^64-1", 2, { spi: 0xffffffff, flags: 0x10, length: 0xffffffff, seq: 0xffffffffffffffffn }],
    ["extreme, sequence 2^32 (carry into the high half)", 2, { spi: 7, flags: 0, length: 17, seq: 0x100000000n }],
  ];
  for (const [name, format, f] of headers) {
    const bytes = pack(format, f).toString("hex");
    add(`header: ${name}`, "record.header", [String(format), fieldArg(f)], bytes);
    add(`parse: ${name}`, "record.parse", [String(format), bytes], fieldArg(f));
  }
  const rejects: [string, number, Fields, string][] = [
    ["compact SPI 2^24", 0, { spi: 0x1000000, flags: 0, length: 0, seq: 0n }, "spi"],
    ["compact length 4096", 0, { spi: 1, flags: 0, length: 4096, seq: 0n }, "length"],
    ["compact sequence 2^20", 0, { spi: 1, flags: 0, length: 0, seq: 0x100000n }, "seq"],
    ["reserved flag bit 0", 0, { spi: 1, flags: 0x01, length: 0, seq: 0n }, "flags"],
    ["large sequence 2^32", 1, { spi: 1, flags: 0, length: 0, seq: 0x100000000n }, "seq"],
  ];
  for (const [name, format, f, why] of rejects) add(`header rejects ${name}`, "record.header", [String(format), fieldArg(f)], `REJECT:${why}`);
  // The encoder judges the fields against the format only, in the order flags, SPI, length, sequence; SPI 0
  // is a value it writes (the error packet's), and it has no payload to hold the Length to.
  add("header: compact SPI 0 is written (the encoder does not judge SPIs)", "record.header", ["0", fieldArg({ spi: 0, flags: 0, length: 16, seq: 0n })], pack(0, { spi: 0, flags: 0, length: 16, seq: 0n }).toString("hex"));
  add("header rejects a reserved flag before an SPI the format cannot carry", "record.header", ["0", fieldArg({ spi: 0x1000000, flags: 0x02, length: 0, seq: 0n })], "REJECT:flags");
  add("header rejects an SPI the format cannot carry before a length", "record.header", ["0", fieldArg({ spi: 0x1000000, flags: 0, length: 4096, seq: 0x100000n })], "REJECT:spi");
  add("header rejects a length the format cannot carry before a sequence number", "record.header", ["0", fieldArg({ spi: 1, flags: 0, length: 4096, seq: 0x100000n })], "REJECT:length");
  add("parse: SPI 0 is read (parsing does not judge SPIs)", "record.parse", ["0", "00".repeat(8)], fieldArg({ spi: 0, flags: 0, length: 0, seq: 0n }));
  add("parse rejects 7 bytes of compact header", "record.parse", ["0", "00000100000000"], "REJECT:truncated");
  add("parse rejects 16 bytes of extreme header", "record.parse", ["2", "00".repeat(16)], "REJECT:truncated");
  add("parse rejects a reserved flag", "record.parse", ["1", "00000001" + "08" + "00".repeat(8)], "REJECT:flags");

  // Compact records under suite `constrained`.
  const key = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
  const iv = Buffer.from("a0a1a2a3a4a5a6a7a8a9aaabac", "hex");
  const payloads: [string, Buffer, Fields][] = [
    ["empty payload", Buffer.alloc(0), { spi: 0x000001, flags: 0, length: 0, seq: 0n }],
    ["20-byte reading", Buffer.from("sensor:t=21.5;h=40%!", "ascii"), { spi: 0xabcdef, flags: 0, length: 20, seq: 1n }],
    ["key phase 1, last sequence number", Buffer.from("00112233445566778899aabbccddeeff", "hex"), { spi: 0x00beef, flags: 0x40, length: 16, seq: 0xfffffn }],
    ["control message", Buffer.from("01", "hex"), { spi: 0xffffff, flags: 0x20, length: 1, seq: 42n }],
    // KEY_UPDATE (2) asking the peer to move its sending key to index 257 (low byte 0x01), sent under key phase 1.
    ["control message KEY_UPDATE, to key index 257", Buffer.from("0201", "hex"), { spi: 0x00beef, flags: 0x60, length: 2, seq: 7n }],
    ["4095-byte payload (the compact maximum)", Buffer.alloc(4095, 0x5a), { spi: 0x010203, flags: 0x80, length: 4095, seq: 0x12345n }],
  ];
  for (const [name, payload, f] of payloads) {
    const rec = seal(key, iv, f, payload).toString("hex");
    const full = { ...f, length: payload.length };
    add(`seal: ${name}`, "record.seal", ["0", key.toString("hex"), iv.toString("hex"), fieldArg(full), payload.toString("hex")], rec);
    add(`open: ${name}`, "record.open", ["0", key.toString("hex"), iv.toString("hex"), rec], `${fieldArg(full)}:${payload.toString("hex")}`);
  }
  const sample = seal(key, iv, { spi: 0xabcdef, flags: 0, length: 4, seq: 9n }, Buffer.from("ping"));
  const flip = (buf: Buffer, i: number) => { const b = Buffer.from(buf); b[i] ^= 1; return b.toString("hex"); };
  const openCase = (name: string, rec: string, out: string) =>
    add(`open rejects ${name}`, "record.open", ["0", key.toString("hex"), iv.toString("hex"), rec], out);
  openCase("a flipped SPI bit (header is authenticated)", flip(sample, 2), "REJECT:auth");
  openCase("a flipped sequence bit", flip(sample, 7), "REJECT:auth");
  openCase("a flipped payload bit", flip(sample, 9), "REJECT:auth");
  openCase("a flipped tag bit", flip(sample, sample.length - 1), "REJECT:auth");
  openCase("a missing tag byte", sample.subarray(0, sample.length - 1).toString("hex"), "REJECT:truncated");
  openCase("a trailing byte", Buffer.concat([sample, Buffer.from([0])]).toString("hex"), "REJECT:overlong");
  openCase("SPI 0 (negotiation)", "00".repeat(16), "REJECT:spi");
  // The order open refuses in: truncated header, reserved flag, SPI 0, then the size against Length, then the tag.
  openCase("a reserved flag before SPI 0", "00000001" + "00".repeat(12), "REJECT:flags");
  openCase("SPI 0 before a size that does not match its Length", "00".repeat(10), "REJECT:spi");
  openCase("a short record before its tag is tried", sample.subarray(0, 12).toString("hex"), "REJECT:truncated");
  // Seal takes Length from the payload: the Length field of its argument is not used.
  add("seal: the Length is the payload's, whatever the argument's Length field says", "record.seal",
    ["0", key.toString("hex"), iv.toString("hex"), fieldArg({ spi: 0xabcdef, flags: 0, length: 4095, seq: 9n }), Buffer.from("ping").toString("hex")], sample.toString("hex"));
  add("seal refuses a reserved flag before SPI 0", "record.seal", ["0", key.toString("hex"), iv.toString("hex"), fieldArg({ spi: 0, flags: 0x04, length: 1, seq: 1n }), "00"], "REJECT:flags");
  add("seal refuses SPI 0", "record.seal", ["0", key.toString("hex"), iv.toString("hex"), fieldArg({ spi: 0, flags: 0, length: 1, seq: 1n }), "00"], "REJECT:spi");

  // How a receiver sorts a datagram: a handshake message is known by its shape (00 00 00, a type byte, exactly
  // that type's size) before anything else, then the 16-byte error packet, then a record. In compact format
  // no record has that shape (its SPI is never 0); in large and extreme formats a record on SPI 0x000000TT
  // of exactly type TT's size does, and is taken as the handshake message (sesame never lets them meet: 1.5).
  const HS_SIZE: Record<number, number> = { 0x11: 39, 0x12: 51, 0x13: 51, 0x14: 47, 0x15: 15, 0x16: 27, 0x17: 27, 0x18: 23 };
  const TAG = [8, 16, 16];
  function kind(format: number, p: Buffer): string {
    if (p.length >= 4 && p[0] === 0 && p[1] === 0 && p[2] === 0 && HS_SIZE[p[3]] === p.length) return `handshake:${p.subarray(3, 4).toString("hex")}`;
    if (p.length === 16 && p.every((x) => x === 0)) return "error";
    if (p.length < SIZE[format]) return "REJECT:truncated";
    const spi = format === 0 ? p.readUIntBE(0, 3) : p.readUInt32BE(0);
    const flags = p[format === 0 ? 3 : 4];
    if ((flags & 0x0f) !== 0) return "REJECT:flags";
    if (spi === 0) return "REJECT:spi";
    const length = format === 0 ? p.readUInt32BE(4) >>> 20 : p.readUInt32BE(5);
    const seq = format === 0 ? BigInt(p.readUInt32BE(4) & 0xfffff) : format === 1 ? BigInt(p.readUInt32BE(9)) : p.readBigUInt64BE(9);
    const want = SIZE[format] + length + TAG[format];
    if (p.length !== want) return p.length < want ? "REJECT:truncated" : "REJECT:overlong";
    return `record:${fieldArg({ spi, flags, length, seq })}`;
  }
  const record = (format: number, f: Fields) => Buffer.concat([pack(format, f), Buffer.alloc(f.length + TAG[format], 0x77)]);
  const kinds: [string, number, Buffer][] = [
    ["compact: a psk R1", 0, Buffer.concat([Buffer.from("00000015abcdef", "hex"), Buffer.alloc(8, 0xa1)])],
    ["compact: the error packet", 0, Buffer.alloc(16)],
    ["compact: 17 zero bytes are no error packet, and SPI 0 is no record", 0, Buffer.alloc(17)],
    ["compact: 00 00 00 7f is no handshake type: a record, refused for its reserved flags", 0, Buffer.concat([Buffer.from("0000007f", "hex"), Buffer.alloc(35)])],
    ["compact: a dh R1 one byte short is no handshake message: a record, refused for its flags", 0, Buffer.concat([Buffer.from("00000011", "hex"), Buffer.alloc(34)])],
    ["compact: a record on SPI 0x000011", 0, record(0, { spi: 0x11, flags: 0, length: 23, seq: 5n })],
    ["extreme: a record on SPI 0x00000011 of dh R1's size is taken as R1", 2, record(2, { spi: 0x11, flags: 0x10, length: 6, seq: 5n })],
    ["extreme: a record on SPI 0x00000011 of another size", 2, record(2, { spi: 0x11, flags: 0x10, length: 7, seq: 5n })],
    ["large: a record on SPI 0x00000014 of dh R2's size is taken as R2", 1, record(1, { spi: 0x14, flags: 0, length: 18, seq: 1n })],
    ["large: a record on SPI 0x00000100", 1, record(1, { spi: 0x100, flags: 0, length: 5, seq: 1n })],
    ["extreme: the error packet", 2, Buffer.alloc(16)],
  ];
  for (const [name, format, p] of kinds) add(`kind: ${name}`, "packet.kind", [String(format), p.toString("hex")], kind(format, p));

  const file = {
    primitive: "SSE records",
    source: "docs/PROTOCOL.md; generated by scripts/vectors/record.ts with Buffer packing and node:crypto AES-128-CCM, independent of firmware/",
    cases,
  };
  writeFileSync(new URL("../../test/vectors/record.json", import.meta.url), JSON.stringify(file, null, 2) + "\n");
  console.log(`test/vectors/record.json: ${cases.length} cases`);
}
