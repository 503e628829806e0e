// Seal and open throughput for both suites on the host, next to the raw node:crypto calls that are their
// floor (one createCipheriv/createDecipheriv per record), measured interleaved in the same run.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { FORMAT_COMPACT, FORMAT_EXTREME } from "../../firmware/record/header";
import { HOST_CCM8, HOST_GCM16, HostKeys, openFast, sealFast } from "../../host/record/fast";
import { fmt, progress, rate, table } from "../lib/measure";

const SIZES = [16, 64, 256, 1024];

function rawSeal(cipher: string, key: Buffer, nonce: Buffer, tag: number, aad: Buffer, pt: Buffer) {
  const c = createCipheriv(cipher as "aes-128-ccm", key, nonce, { authTagLength: tag });
  c.setAAD(aad, { plaintextLength: pt.length });
  const ct = c.update(pt);
  c.final();
  return [ct, c.getAuthTag()];
}

/** One raw node:crypto open: a fresh decipher context, tag, AAD, update, final (the floor of every open path). */
export function rawOpen(cipher: string, key: Buffer, nonce: Buffer, tag: number, aad: Buffer, ct: Buffer, t: Buffer) {
  const d = createDecipheriv(cipher as "aes-128-ccm", key, nonce, { authTagLength: tag });
  d.setAuthTag(t);
  d.setAAD(aad, { plaintextLength: ct.length });
  const pt = d.update(ct);
  d.final();
  return pt;
}

export function benchRecords(): string {
  const suites = [
    { name: "constrained (AES-128-CCM-8, compact)", k: { suite: HOST_CCM8, format: FORMAT_COMPACT, key: randomBytes(16), iv: randomBytes(13) } as HostKeys },
    { name: "backbone (AES-256-GCM, extreme)", k: { suite: HOST_GCM16, format: FORMAT_EXTREME, key: randomBytes(32), iv: randomBytes(12) } as HostKeys },
  ];
  const rows: (string | number)[][] = [];
  const total = suites.length * SIZES.length;
  let done = 0;
  for (const s of suites) {
    for (const size of SIZES) {
      progress(`records: ${s.name.split(" ")[0]} ${size} B`, done, total);
      const payload = randomBytes(size);
      const rec = sealFast(s.k, 0x1234, 0, 0, 0, payload); // sequence 0: the nonce is the IV itself
      const hs = s.k.format === FORMAT_COMPACT ? 8 : 17;
      const aad = rec.subarray(0, hs);
      const ct = rec.subarray(hs, hs + size);
      const tag = rec.subarray(hs + size);
      const nonce = Buffer.from(s.k.iv);
      const { cipher, tagLen } = s.k.suite;
      let seq = 0;
      const seal = rate(() => sealFast(s.k, 0x1234, 0, 0, seq++ & 0xfffff, payload));
      const rSeal = rate(() => rawSeal(cipher, s.k.key, nonce, tagLen, aad, payload));
      const open = rate(() => openFast(s.k, rec));
      const rOpen = rate(() => rawOpen(cipher, s.k.key, nonce, tagLen, aad, ct, tag));
      rows.push([
        s.name.split(" ")[0], size,
        fmt(seal.opsPerSec), fmt(rSeal.opsPerSec), ((seal.opsPerSec / rSeal.opsPerSec) * 100).toFixed(0) + "%",
        fmt(open.opsPerSec), fmt(rOpen.opsPerSec), ((open.opsPerSec / rOpen.opsPerSec) * 100).toFixed(0) + "%",
      ]);
      progress("records", ++done, total);
    }
  }
  return table(
    ["suite", "payload B", "seal/s", "raw seal/s", "ratio", "open/s", "raw open/s", "ratio"],
    rows,
  ) + "\n\n" + backboneChoice();
}

/** Why the backbone suite is AES-256-GCM: raw node:crypto seals of the two candidates, same run. */
function backboneChoice(): string {
  const rows: (string | number)[][] = [];
  for (const size of [64, 1024, 16384]) {
    const pt = randomBytes(size), aad = randomBytes(17), key = randomBytes(32), nonce = randomBytes(12);
    const gcm = rate(() => rawSeal("aes-256-gcm", key, nonce, 16, aad, pt));
    const chacha = rate(() => rawSeal("chacha20-poly1305", key, nonce, 16, aad, pt));
    rows.push([size, fmt(gcm.opsPerSec), fmt(chacha.opsPerSec), (gcm.opsPerSec / chacha.opsPerSec).toFixed(2) + "x"]);
  }
  return "Backbone AEAD candidates (raw node:crypto seals/s):\n" + table(["payload B", "AES-256-GCM", "ChaCha20-Poly1305", "GCM/ChaCha"], rows);
}
