import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as dgram from "node:dgram";
import { once } from "node:events";
import * as net from "node:net";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { readHeader, writeHeader } from "../../../firmware/record/header";
import { SaPolicy } from "../../../firmware/session/sa";
import { sessionNew } from "../../../firmware/session/session";
import { hostProvider } from "../../../host/crypto/provider";
import { handshake, policy as basePolicy } from "../../harness/sessions";
import { tcpPair as tcpPairOpen } from "../../harness/tcp-pair";

const policy = (over: Partial<SaPolicy> = {}): SaPolicy => basePolicy(hostProvider, over);
import { datagramLink, PacketLink, SessionStream, streamLink } from "../../../host/session/duplex";

/** A device-side and a gateway-side stream over one in-memory handshake (sessions on Date.now's clock). */
function streams(over: Partial<SaPolicy> = {}, maxRecord?: number): { dev: SessionStream; gw: SessionStream } {
  const { ei, er } = handshake();
  const dev = new SessionStream(sessionNew(policy(over), ei, Date.now()), { maxRecord });
  const gw = new SessionStream(sessionNew(policy(over), er, Date.now()), { maxRecord });
  cleanup.push(() => { dev.destroy(); gw.destroy(); });
  return { dev, gw };
}

const cleanup: (() => void)[] = [];

async function tcpPair(): Promise<[net.Socket, net.Socket]> {
  const [client, srv] = await tcpPairOpen();
  cleanup.push(() => { client.destroy(); srv.destroy(); });
  return [client, srv];
}

async function udpPair(): Promise<[dgram.Socket, dgram.Socket]> {
  const a = dgram.createSocket("udp4");
  const b = dgram.createSocket("udp4");
  a.bind(0, "127.0.0.1");
  b.bind(0, "127.0.0.1");
  await Promise.all([once(a, "listening"), once(b, "listening")]);
  cleanup.push(() => { for (const s of [a, b]) try { s.close(); } catch { /* closed */ } });
  return [a, b];
}

/** Watches a link: the payload length of every record sent, and packets sent / received. */
type Tap = { sent: Uint8Array[]; lengths: number[]; received: number };
function tap(link: PacketLink, t: Tap = { sent: [], lengths: [], received: 0 }): PacketLink & { tap: Tap } {
  return {
    ...link,
    tap: t,
    send(p) {
      t.sent.push(p);
      const h = readHeader(0, p, 0);
      if (typeof h !== "number" && h.spi !== 0) t.lengths.push(h.length);
      return link.send(p);
    },
    onPacket(cb) { link.onPacket((p) => { t.received++; cb(p); }); },
    framingErrors: undefined,
  };
}

/** Writes `data` in chunks of random sizes, honouring backpressure. */
async function writeAll(s: SessionStream, data: Buffer, maxChunk = 70_000): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const n = 1 + Math.floor(Math.random() * maxChunk);
    if (!s.write(data.subarray(off, off + n))) await once(s, "drain");
    off += n;
  }
}

/** Collects what `s` reads until `total` bytes came. */
function readAll(s: SessionStream, total: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    s.on("error", reject);
    s.on("data", (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= total) resolve(Buffer.concat(parts));
    });
  });
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(5);
  }
}

describe("host session duplex stream", () => {
  afterEach(() => { for (const f of cleanup.splice(0)) f(); });

  it("carries 1 MB each way over TCP, byte-identical, in records of at most maxRecord", async () => {
    const { dev, gw } = streams({ datagram: false });
    const [a, b] = await tcpPair();
    const ta = tap(streamLink(a, 0, 8));
    const tb = tap(streamLink(b, 0, 8));
    dev.addTransport(1, "tcp", ta);
    gw.addTransport(1, "tcp", tb);
    const up = randomBytes(1 << 20);
    const down = randomBytes(1 << 20);
    const gotUp = readAll(gw, up.length);
    const gotDown = readAll(dev, down.length);
    // One way through pipe() (end: false, or the session would close before the other way is done), the
    // other by hand, both in chunks of random sizes up to 70 kB.
    const chunks: Buffer[] = [];
    for (let off = 0, n = 0; off < up.length; off += n) {
      n = 1 + Math.floor(Math.random() * 70_000);
      chunks.push(up.subarray(off, off + n));
    }
    const source = Readable.from(chunks);
    source.pipe(dev, { end: false });
    await Promise.all([once(source, "end"), writeAll(gw, down)]);
    assert.ok((await gotUp).equals(up));
    assert.ok((await gotDown).equals(down));
    for (const t of [ta.tap, tb.tap]) {
      assert.ok(t.lengths.every((n) => n <= 1024), "no record above maxRecord");
      assert.ok(t.lengths.filter((n) => n === 1024).length > 900, "long writes fill records");
    }
    assert.equal(gw.stats.received, ta.tap.lengths.length);
    assert.equal(gw.stats.rejected, 0);
    const closed = Promise.all([once(dev, "close"), once(gw, "close")]);
    dev.end();
    await closed;
    assert.ok(gw.closedByPeer && !gw.abortedByPeer);
  });

  it("keeps a session going over UDP when its TCP connection dies mid-transfer", async () => {
    const { dev, gw } = streams({ datagram: true }, 512);
    const [a, b] = await tcpPair();
    const [ua, ub] = await udpPair();
    const devTcp = tap(streamLink(a, 0, 8));
    const devUdp = tap(datagramLink(ua, ub.address() as net.AddressInfo));
    const gwTcp = tap(streamLink(b, 0, 8));
    const gwUdp = tap(datagramLink(ub, ua.address() as net.AddressInfo));
    dev.addTransport(1, "tcp", devTcp);
    dev.addTransport(2, "udp", devUdp);
    gw.addTransport(1, "tcp", gwTcp);
    gw.addTransport(2, "udp", gwUdp);
    const downs: number[] = [];
    dev.on("transport-down", (id: number) => downs.push(id));

    // 512-byte messages, one per record, numbered: losses and duplicates show as whole messages.
    const N = 600;
    const seen: number[] = [];
    let buf = Buffer.alloc(0);
    gw.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (; buf.length >= 512; buf = buf.subarray(512)) seen.push(buf.readUInt32BE(0));
    });
    // Bursts of 20 written back to back; the device's TCP connection dies inside one (after message 210),
    // and the next record goes out over UDP.
    for (let i = 0; i < N; i++) {
      const m = randomBytes(512);
      m.writeUInt32BE(i, 0);
      dev.write(m);
      if (i === 210) a.destroy();
      if (i % 20 === 19) await new Promise((r) => setImmediate(r)); // UDP has no flow control: let the receiver keep up
    }
    await until(() => seen.includes(N - 1), 5000).catch(() => undefined);
    await sleep(100);

    assert.deepEqual(downs, [1], "the TCP transport left the session");
    assert.deepEqual(dev.transports().map((t) => t.name), ["udp"]);
    await until(() => gw.transports().length === 1); // the gateway saw the connection go too
    assert.equal(new Set(seen).size, seen.length, "nothing delivered twice");
    for (let k = 1; k < seen.length; k++) assert.ok(seen[k] > seen[k - 1], `in order: ${seen[k - 1]} then ${seen[k]}`);
    const lost = N - seen.length;
    if (process.env.DEBUG_DUPLEX) console.log(`tcp ${gwTcp.tap.received}, udp ${gwUdp.tap.received}, lost ${lost}`);
    assert.ok(gwUdp.tap.received >= N - 211 - lost && gwUdp.tap.received > 350, `UDP carried the rest (${gwUdp.tap.received})`);
    assert.ok(lost <= 10, `lost ${lost} of ${N} (datagrams are not retransmitted)`);
    assert.ok(seen.includes(N - 1));
    assert.equal(gw.stats.replays, 0);
  });

  it("end() sends CLOSE and ends the peer; destroy(err) sends the error packet", async () => {
    {
      const { dev, gw } = streams({ datagram: false });
      const [a, b] = await tcpPair();
      dev.addTransport(1, "tcp", streamLink(a, 0, 8));
      gw.addTransport(1, "tcp", streamLink(b, 0, 8));
      const got = readAll(gw, 5);
      dev.write("hello");
      assert.equal((await got).toString(), "hello");
      dev.resume();
      // Listen first: once 'end' is out, the rest of the shutdown runs on process.nextTick, before an await resumes.
      const ended = once(gw, "end");
      const closed = Promise.all([once(gw, "close"), once(dev, "close")]);
      dev.end();
      await ended;
      assert.ok(gw.closedByPeer && !gw.abortedByPeer);
      await closed;
      assert.equal(dev.session.state, 2);
      // Writing to a closed session fails with a reason.
      const late = new SessionStream(gw.session);
      late.addTransport(9, "none", tap({ send: () => true, onPacket() {}, onClose() {}, close() {} }));
      late.on("error", () => {});
      const err = await new Promise<Error | null | undefined>((r) => late.write("x", r));
      assert.match(String(err), /session is closed/);
      late.destroy();
    }
    {
      const { dev, gw } = streams({ datagram: false });
      const [a, b] = await tcpPair();
      const ta = tap(streamLink(a, 0, 8));
      dev.addTransport(1, "tcp", ta);
      gw.addTransport(1, "tcp", streamLink(b, 0, 8));
      gw.resume();
      const errors: Error[] = [];
      dev.on("error", (e) => errors.push(e));
      const ended = once(gw, "end");
      const closed = once(gw, "close");
      dev.destroy(new Error("sensor fault"));
      await ended;
      assert.ok(gw.closedByPeer && gw.abortedByPeer);
      assert.equal(Buffer.from(ta.tap.sent.at(-1)!).toString("hex"), "00".repeat(16));
      await closed;
      assert.equal(errors[0]?.message, "sensor fault");
    }
  });

  it("bounds memory when the peer does not read (20 MB) and delivers everything after", async () => {
    const { dev, gw } = streams({ datagram: false }, 4095);
    const [a, b] = await tcpPair();
    dev.addTransport(1, "tcp", streamLink(a, 0, 8));
    gw.addTransport(1, "tcp", streamLink(b, 0, 8));
    const total = 20 << 20;
    const data = randomBytes(total);
    const want = createHash("sha256").update(data).digest("hex");
    gw.pause();
    const rss0 = process.memoryUsage().rss;
    let written = 0;
    let refused = 0;
    const writer = (async () => {
      while (written < total) {
        const c = data.subarray(written, written + 65536);
        written += c.length;
        if (!dev.write(c)) {
          refused++;
          await once(dev, "drain");
        }
      }
    })();
    // Wait until the writer stalls: the peer's stream, its socket and the kernel's buffers are full.
    let last = -1;
    while (written !== last) {
      last = written;
      await sleep(300);
    }
    const grown = process.memoryUsage().rss - rss0;
    assert.ok(refused > 0, "write() returned false");
    assert.ok(written < total, `stalled at ${written} of ${total}`);
    assert.ok(grown < 64 << 20, `rss grew ${grown >> 20} MB`);
    if (process.env.DEBUG_DUPLEX) console.log(`stalled at ${written >> 10} KB, ${refused} refusals, rss +${grown >> 20} MB`);

    const h = createHash("sha256");
    let got = 0;
    gw.on("data", (d: Buffer) => { h.update(d); got += d.length; });
    gw.resume();
    await writer;
    await until(() => got >= total, 60_000);
    assert.equal(got, total);
    assert.equal(h.digest("hex"), want);
  });

  it("drops a forged record and a broken frame injected into the TCP stream, and carries on", async () => {
    const { dev, gw } = streams({ datagram: false });
    const [a, b] = await tcpPair();
    dev.addTransport(1, "tcp", streamLink(a, 0, 8));
    const gwLink = streamLink(b, 0, 8);
    gw.addTransport(1, "tcp", gwLink);
    const text: string[] = [];
    gw.on("data", (d: Buffer) => text.push(d.toString()));
    const send = (s: string) => new Promise<void>((r) => dev.write(s, () => r()));

    await send("before");
    await until(() => text.length === 1);
    // A record with the gateway's SPI, a fresh sequence number and a plausible length, but a random body.
    const forged = Buffer.alloc(8 + 32 + 8);
    writeHeader(0, { spi: gw.session.inb.spi, flags: 0, length: 32, seqHi: 0, seq: 1000 }, forged, 0);
    randomBytes(40).copy(forged, 8);
    a.write(forged);
    await until(() => gw.stats.rejected === 1);
    assert.equal(gw.stats.authFailures, 1);
    await send("after");
    await until(() => text.length === 2);

    // A header with reserved flag bits set cannot be framed: the buffer is dropped and counted.
    const broken = Buffer.alloc(16, 0xff);
    broken[3] = 0x0f;
    a.write(broken);
    await until(() => gwLink.framingErrors === 1);
    assert.equal(gw.stats.framingErrors, 1);
    await sleep(50);
    await send("again");
    await until(() => text.length === 3);
    assert.deepEqual(text, ["before", "after", "again"]);
    assert.equal(gw.stats.received, 3);
  });
});
