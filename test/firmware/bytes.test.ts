import assert from "node:assert/strict";
import { fromHex, toHex, equalCT, slice, concat, ascii } from "../../firmware/bytes";

describe("bytes", () => {
  it("round-trips hex and rejects bad hex", () => {
    assert.equal(toHex(fromHex("00ff10AB")!), "00ff10ab");
    assert.equal(fromHex("abc"), undefined);
    assert.equal(fromHex("zz"), undefined);
  });
  it("compares, slices and concatenates", () => {
    const a = fromHex("01020304")!;
    assert.ok(equalCT(a, fromHex("01020304")!));
    assert.ok(!equalCT(a, fromHex("01020305")!));
    assert.ok(!equalCT(a, fromHex("010203")!));
    assert.equal(toHex(slice(a, 1, 3)), "0203");
    assert.equal(toHex(concat(a, ascii("A"))), "0102030441");
  });
});
