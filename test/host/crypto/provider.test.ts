import assert from "node:assert/strict";
import { x25519, x25519Base } from "../../../firmware/crypto/x25519";
import { createHmac, randomBytes } from "node:crypto";
import { hostProvider, nodeKeyPair, nodeX25519, x25519PublicKeysKept } from "../../../host/crypto/provider";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("host/crypto/provider: key pairs", () => {
  it("makes clamped scalars whose public key is the portable X25519 of the base point, and pairs agree", () => {
    for (let i = 0; i < 20; i++) {
      const a = nodeKeyPair(), b = nodeKeyPair();
      assert.equal(a.s[0] & 7, 0);
      assert.equal(a.s[31] & 0xc0, 0x40);
      assert.equal(hex(a.S), hex(x25519Base(a.s)));
      assert.equal(hex(nodeX25519(a.s, b.S)), hex(nodeX25519(b.s, a.S)));
    }
  });
});

describe("host/crypto/provider: X25519 public keys", () => {
  it("uses an array's current bytes when it was written to after an X25519 on it (a reused buffer)", () => {
    const me = nodeKeyPair(), a = nodeKeyPair(), b = nodeKeyPair();
    const buf = Uint8Array.from(a.S);
    assert.equal(hex(nodeX25519(me.s, buf)), hex(nodeX25519(a.s, me.S)));
    buf.set(b.S);
    assert.equal(hex(nodeX25519(me.s, buf)), hex(nodeX25519(b.s, me.S)));
    assert.equal(hex(nodeX25519(me.s, buf)), hex(x25519(me.s, b.S)));
  });

  it("keeps a public key by value from its second import on, not an ephemeral key seen once", () => {
    const me = nodeKeyPair();
    const before = x25519PublicKeysKept();
    for (let i = 0; i < 200; i++) nodeX25519(me.s, randomBytes(32));
    assert.equal(x25519PublicKeysKept(), before);
    const peer = nodeKeyPair();
    const first = nodeX25519(me.s, Uint8Array.from(peer.S));
    const second = nodeX25519(me.s, Uint8Array.from(peer.S)); // the same key in another array: a static key from a registry
    assert.equal(x25519PublicKeysKept(), before + 1);
    assert.equal(hex(first), hex(second));
  });
});

describe("host/crypto/provider: HMAC-SHA-256", () => {
  it("gives OpenSSL's HMAC for keys and messages around the block size and past the scratch block", () => {
    const lengths = [0, 1, 31, 32, 33, 55, 56, 63, 64, 65, 100, 128, 200, 447, 448, 511, 512, 513, 1000];
    for (const kl of lengths) {
      for (const ml of lengths) {
        const key = randomBytes(kl), message = randomBytes(ml);
        assert.equal(hex(hostProvider.hmac(key, message)), createHmac("sha256", key).update(message).digest("hex"), `key ${kl} B, message ${ml} B`);
      }
    }
  });

  it("leaves nothing of one MAC in the next (a short key after a long one, a short message after a long one)", () => {
    const long = randomBytes(64), short = randomBytes(5);
    hostProvider.hmac(long, randomBytes(300));
    assert.equal(hex(hostProvider.hmac(short, short)), createHmac("sha256", short).update(short).digest("hex"));
    assert.equal(hex(hostProvider.hmac(Uint8Array.of(), Uint8Array.of())), createHmac("sha256", Buffer.alloc(0)).update(Buffer.alloc(0)).digest("hex"));
  });
});
