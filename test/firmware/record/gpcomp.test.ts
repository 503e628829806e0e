import assert from "node:assert/strict";
import fc from "fast-check";
import { GPCOMP_MAX_PLAIN, gpcompPack, gpcompUnpack, heatshrinkSize } from "../../../firmware/record/gpcomp";
import { REJECT_GPCOMP } from "../../../firmware/record/header";
import { hostCodec } from "../../../host/record/gpcomp";
import { heatshrinkRun } from "../../harness/heatshrink";

describe("gpcomp", () => {
  it("compresses only what shrinks, and gives back the same bytes", () => {
    const text = Buffer.from("t=21.5;h=40%;".repeat(8));
    const packed = gpcompPack(hostCodec, text)!;
    assert.ok(packed.length < text.length / 2, `${packed.length} of ${text.length}`);
    assert.deepEqual(Buffer.from(gpcompUnpack(hostCodec, packed) as Uint8Array), text);
    assert.equal(gpcompPack(hostCodec, Buffer.from("010000420866002a", "hex")), undefined, "an 8-byte reading does not shrink");
    assert.equal(gpcompPack(hostCodec, new Uint8Array(0)), undefined);
    assert.equal(gpcompPack(undefined, text), undefined, "no codec, no compression");
  });

  it("accepts 4095 bytes out and refuses 4096 (a bomb), and everything without a codec", () => {
    assert.equal((gpcompUnpack(hostCodec, heatshrinkRun(GPCOMP_MAX_PLAIN)) as Uint8Array).length, GPCOMP_MAX_PLAIN);
    assert.equal(gpcompUnpack(hostCodec, heatshrinkRun(GPCOMP_MAX_PLAIN + 1)), REJECT_GPCOMP);
    assert.equal(gpcompUnpack(hostCodec, heatshrinkRun(1 << 20)), REJECT_GPCOMP);
    assert.equal(gpcompUnpack(undefined, gpcompPack(hostCodec, Buffer.from("aaaaaaaaaaaaaaaaaaaa"))!), REJECT_GPCOMP);
  });

  it("sizes a bomb from its bits without decoding it, and stops counting past the bound", () => {
    // The whole of a 4095-byte payload of back-references would be 139,713 bytes out: counting stops at the bound.
    const big = heatshrinkRun(140_000).subarray(0, GPCOMP_MAX_PLAIN);
    assert.ok(heatshrinkSize(big, GPCOMP_MAX_PLAIN) <= GPCOMP_MAX_PLAIN + 64);
    assert.equal(heatshrinkSize(big, 1 << 30), 139_713);
  });

  it("sizes any bit stream as heatshrink itself decodes it", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        assert.equal(heatshrinkSize(data, 1 << 30), hostCodec.decompress(data)!.byteLength);
      }),
      { numRuns: 500 },
    );
  });
});
