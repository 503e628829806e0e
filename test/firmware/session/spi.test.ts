import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { spiAllocate, SPI_DRAWS } from "../../../firmware/session/spi";

describe("SPI allocation", () => {
  it("draws non-zero 24-bit SPIs", () => {
    for (let n = 0; n < 2000; n++) {
      const spi = spiAllocate((k) => randomBytes(k), () => false);
      assert.ok(spi > 0 && spi <= 0xffffff, String(spi));
    }
  });

  it("rejects a truncated SPI that is 0 or collides with a live one, and draws again", () => {
    // A KMP whose first draws truncate to a live SPI and to 0 (high byte differs, low 24 bits do not).
    const draws = [[0x7f, 0x12, 0x34, 0x56], [0x01, 0, 0, 0], [0x33, 0x12, 0x34, 0x57]];
    let i = 0;
    const spi = spiAllocate(() => Uint8Array.from(draws[i++]), (s) => s === 0x123456);
    assert.equal(spi, 0x123457);
    assert.equal(i, 3);
  });

  it("gives up (-1) rather than loop when every draw collides", () => {
    let calls = 0;
    assert.equal(spiAllocate((k) => (calls++, randomBytes(k)), () => true), -1);
    assert.equal(calls, SPI_DRAWS);
  });
});
