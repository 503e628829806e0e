// Generates test/vectors/gpcomp.json: GPComp (docs/PROTOCOL.md 1.7) on its own and around the AEAD,
// computed without firmware/: heatshrink from EspruinoTools' WebAssembly build of the C library with
// Espruino's configuration (the `espruino` package), the record sealed with node:crypto as in
// scripts/vectors/record.ts, and the compression bombs written bit by bit from the format's definition.
// The real Espruino interpreter (ESPRUINO_BIN) checks the heatshrink bytes against its built-in module.
// Targets with heatshrink (Node, Espruino) get one expectation, Lua (no compressor) another: the refusal.
// Run: tsx scripts/vectors/gpcomp.ts
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fieldArg, seal } from "./record";

const heatshrink = createRequire(import.meta.url)("espruino/libs/heatshrink.js") as { compress(b: Uint8Array): Uint8Array; decompress(b: Uint8Array): Uint8Array };
const MAX_PLAIN = 4095;
const MIN_PLAIN = 16;
const WINDOW_BITS = 8;
const LOOKAHEAD_BITS = 6;

/** A heatshrink bit stream, most significant bit first: 1 + 8 bits a literal, 0 + index-1 + count-1 a back-reference. */
class Bits {
  private readonly bytes: number[] = [];
  private bit = 0;
  put(value: number, n: number): this {
    for (let i = n - 1; i >= 0; i--) {
      if (this.bit === 0) this.bytes.push(0);
      if ((value >> i) & 1) this.bytes[this.bytes.length - 1] |= 0x80 >> this.bit;
      this.bit = (this.bit + 1) & 7;
    }
    return this;
  }
  literal(b: number): this {
    return this.put(1, 1).put(b, 8);
  }
  backref(offset: number, count: number): this {
    return this.put(0, 1).put(offset - 1, WINDOW_BITS).put(count - 1, LOOKAHEAD_BITS);
  }
  done(): Buffer {
    return Buffer.from(this.bytes);
  }
}

/** One byte, then back-references of 64 copies of it until `total` bytes: what a bomb looks like. */
function run(total: number): Buffer {
  const b = new Bits().literal(0x41);
  for (let left = total - 1; left > 0; left -= Math.min(left, 1 << LOOKAHEAD_BITS)) b.backref(1, Math.min(left, 1 << LOOKAHEAD_BITS));
  return b.done();
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const cases: object[] = [];
const WITH = ["node", "espruino"];
const WITHOUT = ["lua"];
const add = (name: string, op: string, args: string[], out: string, only?: string[]) => cases.push(only ? { name, op, args, out, only } : { name, op, args, out });

function compressOut(p: Buffer): string {
  const c = heatshrink.compress(p);
  return c.length < p.length && p.length >= MIN_PLAIN && p.length <= MAX_PLAIN ? "80." + hex(c) : "00." + hex(p);
}

const text = Buffer.from("t=21.5;h=40%;p=1013;t=21.5;h=40%;p=1013;t=21.6;h=41%;p=1013;");
const reading = Buffer.from("010000420866002a", "hex"); // a DATA message: id 0x42, 21.50 degrees, count 42
const zeros = Buffer.alloc(64);
for (const [what, p] of [["text readings", text], ["64 zero bytes", zeros]] as const) {
  add(`gpcomp: compress ${what}: the flag and the compressed payload`, "gpcomp.compress", [hex(p)], compressOut(p), WITH);
  add(`gpcomp: lua has no compressor: ${what} go as they are`, "gpcomp.compress", [hex(p)], "00." + hex(p), WITHOUT);
  add(`gpcomp: decompress ${what}`, "gpcomp.decompress", [hex(heatshrink.compress(p))], hex(p), WITH);
  add(`gpcomp: lua refuses compressed ${what}`, "gpcomp.decompress", [hex(heatshrink.compress(p))], "REJECT:gpcomp", WITHOUT);
}
add("gpcomp: an 8-byte sensor reading does not shrink: sent as it is", "gpcomp.compress", [hex(reading)], "00." + hex(reading));
add("gpcomp: an empty payload is never compressed", "gpcomp.compress", [""], "00.");
add("gpcomp: 15 zero bytes would shrink, but are under 16 bytes: sent as they are", "gpcomp.compress", ["00".repeat(15)], "00." + "00".repeat(15));
add("gpcomp: 16 zero bytes are compressed", "gpcomp.compress", ["00".repeat(16)], compressOut(Buffer.alloc(16)), WITH);
add("gpcomp: lua sends 16 zero bytes as they are", "gpcomp.compress", ["00".repeat(16)], "00." + "00".repeat(16), WITHOUT);

// The bound: 4095 bytes out is accepted, 4096 is a bomb.
const exact = run(MAX_PLAIN);
const bomb = run(MAX_PLAIN + 1);
if (heatshrink.decompress(exact).length !== MAX_PLAIN || heatshrink.decompress(bomb).length !== MAX_PLAIN + 1) throw new Error("bit writer disagrees with heatshrink");
add("gpcomp: decompresses to exactly 4095 bytes (the bound)", "gpcomp.decompress", [hex(exact)], "41".repeat(MAX_PLAIN), WITH);
add("gpcomp: lua refuses the 4095-byte run", "gpcomp.decompress", [hex(exact)], "REJECT:gpcomp", WITHOUT);
add(`gpcomp: bomb: ${bomb.length} bytes that decompress to 4096`, "gpcomp.decompress", [hex(bomb)], "REJECT:gpcomp");
// The largest compact payload, all back-references: 139,777 bytes. Sized from its bits, it is refused before
// anything is allocated (Espruino's own decompress would run a 4000-JsVar board out of memory).
const big = run(140_000).subarray(0, MAX_PLAIN);
add(`gpcomp: bomb: 4095 bytes that decompress to ${heatshrink.decompress(big).length}`, "gpcomp.decompress", [hex(big)], "REJECT:gpcomp");
// A token the input ends inside decodes to nothing (two literals and 6 bits of a third).
add("gpcomp: a token cut short by the end of the input decodes to nothing", "gpcomp.decompress", ["ffffff"], hex(heatshrink.decompress(Buffer.from("ffffff", "hex"))), WITH);

// Around the AEAD: compress, then seal (the tag covers the compressed bytes and the flag); open, then decompress.
const key = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
const iv = Buffer.from("a0a1a2a3a4a5a6a7a8a9aaabac", "hex");
const f = (flags: number, seq: number) => ({ spi: 0xabcdef, flags, length: 0, seq: BigInt(seq) });
const packed = heatshrink.compress(text);
const sealedZ = seal(key, iv, f(0x80, 7), Buffer.from(packed));
const sealedPlain = seal(key, iv, f(0, 7), text);
const arg = (flags: number, seq: number, n: number) => fieldArg({ ...f(flags, seq), length: n });
add("gpcomp: seal compresses, sets bit 7, then seals", "gpcomp.seal", ["0", hex(key), hex(iv), arg(0, 7, text.length), hex(text)], hex(sealedZ), WITH);
add("gpcomp: lua seals the payload as it is, bit 7 clear", "gpcomp.seal", ["0", hex(key), hex(iv), arg(0, 7, text.length), hex(text)], hex(sealedPlain), WITHOUT);
add("gpcomp: open checks the tag, then decompresses", "gpcomp.open", ["0", hex(key), hex(iv), hex(sealedZ)], arg(0x80, 7, packed.length) + ":" + hex(text), WITH);
add("gpcomp: lua opens the record and refuses its GPComp payload", "gpcomp.open", ["0", hex(key), hex(iv), hex(sealedZ)], "REJECT:gpcomp", WITHOUT);
const flipped = Buffer.from(sealedZ);
flipped[3] ^= 0x80;
add("gpcomp: bit 7 is authenticated: cleared in transit, the tag fails", "gpcomp.open", ["0", hex(key), hex(iv), hex(flipped)], "REJECT:auth");
const sealedBomb = seal(key, iv, f(0x80, 8), bomb);
add("gpcomp: a sealed bomb opens and is refused", "gpcomp.open", ["0", hex(key), hex(iv), hex(sealedBomb)], "REJECT:gpcomp");

const file = {
  primitive: "GPComp (FLAGS bit 7): heatshrink, window 2^8, lookahead 2^6, at most 4095 bytes decompressed",
  source: "docs/PROTOCOL.md 1.7; generated by scripts/vectors/gpcomp.ts with EspruinoTools' heatshrink (the C library in WebAssembly, Espruino's configuration) and node:crypto AES-128-CCM, independent of firmware/",
  cases,
};
writeFileSync(new URL("../../test/vectors/gpcomp.json", import.meta.url), JSON.stringify(file, null, 2) + "\n");
console.log(`test/vectors/gpcomp.json: ${cases.length} cases`);
