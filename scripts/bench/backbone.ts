// Bulk throughput over the gateway <-> controller backbone (an extreme-format AES-256-GCM session over TCP,
// host/backbone/) next to the same bytes over Node's own TLS 1.3 on loopback, measured in the same run.
//
// Both are set up the same way: the receiving end (the controller) is a child process, the sending end (the
// gateway) this one, so each side has its own event loop as in a deployment; connections are made once,
// before timing (a backbone is long-lived). A run sends messages of one size back to back, honouring
// backpressure, and ends when the receiver has every byte; MB/s counts payload bytes (10^6 bytes per MB).
//   - sesame: BackboneClient.send(UPLINK) per message, acknowledged by the controller as it goes (so the
//     gateway's bounded queue is part of the path); the receiver gets each message whole, in one view.
//   - TLS: what a Node user would write instead: a 4-byte length prefix and the payload per message on a
//     tls socket (TLS_AES_256_GCM_SHA384, the same AEAD), and a receiver that reassembles each message
//     into one Buffer. The server has a self-signed P-256 certificate made with `openssl` at bench time
//     (Node cannot make certificates); without openssl, TLS 1.3 with an external PSK instead.
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import { KIND_UPLINK, Uplink } from "../../host/backbone/frame";
import { backboneKeyPair } from "../../host/backbone/handshake";
import { BackboneClient, BackboneServer } from "../../host/backbone/link";
import { DEFAULT_PEER } from "../../host/backbone/peer";
import { countCollections, cpuTicks, mainThreadCpuMs, median, progress, stealShare, table } from "../lib/measure";

const SIZES = [1 << 10, 64 << 10, 1 << 20, 10 << 20];
const RUN_BYTES = 64 << 20; // per run (at least 4 messages)
const ROUNDS = Number(process.env.SESAME_BENCH_ROUNDS ?? 7);
const RECEIVER = "--backbone-bench-receiver";
const V13 = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3", ciphers: "TLS_AES_256_GCM_SHA384" } as const;

type Init = { ctlS: string; ctlP: string; kid: string; gwP: string; tls: Tls };
type Tls = { how: string; key?: string; cert?: string; psk?: string };
type ToChild = { cmd: "init"; init: Init } | { cmd: "expect"; bytes: number };
type FromChild = { ready: true; sesame: number; tls: number } | { armed: true } | { done: true; cpuMs: number };

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

function tlsMaterial(): Tls {
  try {
    const dir = mkdtempSync(join(tmpdir(), "sesame-bb-"));
    try {
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost", "-days", "1", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"),
      ], { stdio: "ignore" });
      return { how: "self-signed P-256 certificate (openssl), verified by the client", key: readFileSync(join(dir, "k.pem"), "utf8"), cert: readFileSync(join(dir, "c.pem"), "utf8") };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } catch {
    return { how: "no openssl on PATH: external PSK", psk: randomBytes(32).toString("hex") };
  }
}

function tlsServerOptions(t: Tls): tls.TlsOptions {
  if (t.psk === undefined) return { key: t.key, cert: t.cert, ...V13 };
  const psk = Buffer.from(t.psk, "hex");
  return { pskCallback: () => psk, ...V13, ciphers: "TLS_AES_128_GCM_SHA256" }; // OpenSSL's PSK callbacks need SHA-256
}

function tlsClientOptions(t: Tls): tls.ConnectionOptions {
  if (t.psk === undefined) return { ca: t.cert, servername: "localhost", ...V13 };
  const psk = Buffer.from(t.psk, "hex");
  return { pskCallback: () => ({ psk, identity: "bench" }), checkServerIdentity: () => undefined, ...V13, ciphers: "TLS_AES_128_GCM_SHA256" };
}

// ---- the receiving process ----------------------------------------------------------------------------------

async function receiverMain(): Promise<void> {
  const send = (m: FromChild) => process.send!(m);
  let want = Infinity;
  let got = 0;
  let cpu = process.cpuUsage();
  const count = (n: number) => {
    got += n;
    if (got === want) {
      want = Infinity;
      const c = process.cpuUsage(cpu);
      send({ done: true, cpuMs: (c.user + c.system) / 1e3 });
    }
  };
  let server: BackboneServer | undefined;
  let tlsServer: tls.Server | undefined;
  process.on("message", async (m: ToChild) => {
    if (m.cmd === "expect") {
      want = m.bytes;
      got = 0;
      cpu = process.cpuUsage();
      return send({ armed: true });
    }
    const { init } = m;
    const kid = Buffer.from(init.kid, "hex");
    server = new BackboneServer({ keys: { s: unhex(init.ctlS), S: unhex(init.ctlP) }, gateways: (k) => (Buffer.from(k).equals(kid) ? unhex(init.gwP) : undefined) });
    server.on("message", (msg: Uplink) => count(msg.payload.length));
    const port = (await server.listen()).port;
    tlsServer = tls.createServer(tlsServerOptions(init.tls), (s) => lengthPrefixed(s, count));
    tlsServer.listen(0, "127.0.0.1");
    await once(tlsServer, "listening");
    send({ ready: true, sesame: port, tls: (tlsServer.address() as { port: number }).port });
  });
  process.on("disconnect", () => process.exit(0));
}

/** Reassembles length-prefixed messages into one Buffer each, as a TLS application would. */
function lengthPrefixed(s: tls.TLSSocket, onMessage: (bytes: number) => void): void {
  let parts: Buffer[] = [];
  let have = 0;
  let need = -1; // payload bytes of the message being read, -1 while its prefix is
  s.on("data", (chunk: Buffer) => {
    parts.push(chunk);
    have += chunk.length;
    for (;;) {
      if (need < 0) {
        if (have < 4) return;
        const head = parts.length === 1 ? parts[0] : Buffer.concat(parts);
        need = head.readUInt32BE(0);
        parts = [head.subarray(4)];
        have -= 4;
      }
      if (have < need) return;
      const all = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      const msg = all.subarray(0, need);
      parts = [all.subarray(need)];
      have -= need;
      need = -1;
      onMessage(msg.length);
    }
  });
  s.on("error", () => {});
}

// ---- the sending side (this process) ------------------------------------------------------------------------

type Sender = (payload: Buffer, n: number) => Promise<void>;
/** CPU ms per MB on each side (the sender's kernel part and its main thread's too), the collections other than scavenges in the sender, and the share of the machine's CPU time the hypervisor stole meanwhile. */
type Run = { mbps: number; sendCpu: number; sendSys: number; sendMain: number; majorGcs: number; recvCpu: number; steal: number };

function sesameSender(client: BackboneClient): Sender {
  const device = Buffer.from("bench");
  return (payload, n) => new Promise<void>((resolve) => {
    let sent = 0;
    const pump = () => {
      while (sent < n) {
        if (!client.send({ kind: KIND_UPLINK, device, payload })) return void client.once("drain", pump);
        sent++;
      }
      resolve();
    };
    pump();
  });
}

function tlsSender(sock: tls.TLSSocket): Sender {
  return (payload, n) => new Promise<void>((resolve) => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(payload.length);
    let sent = 0;
    const pump = () => {
      while (sent < n) {
        sock.write(prefix);
        const ok = sock.write(payload);
        sent++;
        if (!ok) return void sock.once("drain", pump);
      }
      resolve();
    };
    pump();
  });
}

export async function benchBackbone(): Promise<string> {
  const ctl = backboneKeyPair();
  const gw = backboneKeyPair();
  const kid = randomBytes(4);
  const material = tlsMaterial();
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [RECEIVER], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const next = () => once(child, "message").then(([m]) => m as FromChild);
  try {
    child.send({ cmd: "init", init: { ctlS: hex(ctl.s), ctlP: hex(ctl.S), kid: hex(kid), gwP: hex(gw.S), tls: material } } satisfies ToChild);
    const ports = (await next()) as { sesame: number; tls: number };
    const client = new BackboneClient({ host: "127.0.0.1", port: ports.sesame, identity: { kid, keys: gw }, controllerKey: ctl.S }).start();
    await once(client, "connected");
    const sock = tls.connect({ port: ports.tls, host: "127.0.0.1", ...tlsClientOptions(material) });
    await once(sock, "secureConnect");
    const protocol = `${sock.getProtocol()} ${sock.getCipher().standardName}`;
    const senders: [string, Sender][] = [["sesame", sesameSender(client)], ["tls", tlsSender(sock)]];

    /** One run: MB/s from the first send until the receiver has every byte, and CPU ms per MB on each side. */
    const run = async (send: Sender, payload: Buffer, n: number): Promise<Run> => {
      child.send({ cmd: "expect", bytes: payload.length * n } satisfies ToChild);
      await next();
      const done = next() as Promise<{ cpuMs: number }>;
      const cpu = process.cpuUsage();
      const ticks = cpuTicks();
      const main = mainThreadCpuMs();
      const gcs = countCollections();
      const start = process.hrtime.bigint();
      await send(payload, n);
      const { cpuMs } = await done;
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      const c = process.cpuUsage(cpu);
      const mb = (payload.length * n) / 1e6;
      const sendMain = (mainThreadCpuMs() - main) / mb;
      return { mbps: mb / secs, sendCpu: (c.user + c.system) / 1e3 / mb, sendSys: c.system / 1e3 / mb, sendMain, majorGcs: gcs.stop().major, recvCpu: cpuMs / mb, steal: stealShare(ticks, cpuTicks()) };
    };

    const rows: (string | number)[][] = [];
    let step = 0;
    for (const size of SIZES) {
      const payload = randomBytes(size);
      const n = Math.max(4, Math.ceil(RUN_BYTES / size));
      const results = new Map<string, Run[]>(senders.map(([name]) => [name, []]));
      for (const [, send] of senders) await run(send, payload, Math.max(2, n >> 2)); // warm up
      for (let r = 0; r < ROUNDS; r++) {
        progress(`backbone: ${size} B`, step++, SIZES.length * ROUNDS);
        // Alternate who goes first, so neither always runs on a warmer machine.
        for (const [name, send] of r % 2 === 0 ? senders : [...senders].reverse()) results.get(name)!.push(await run(send, payload, n));
      }
      const med = (name: string, f: (r: Run) => number) => median(results.get(name)!.map(f));
      const s = med("sesame", (r) => r.mbps);
      const t = med("tls", (r) => r.mbps);
      const cpu = (name: string) => `${med(name, (r) => r.sendCpu).toFixed(2)} (${med(name, (r) => r.sendSys).toFixed(2)}, ${med(name, (r) => r.sendMain).toFixed(1)}) / ${med(name, (r) => r.recvCpu).toFixed(2)}`;
      const steal = median([...results.values()].flat().map((r) => r.steal));
      rows.push([label(size), n, s.toFixed(0), t.toFixed(0), (s / t).toFixed(2) + "x", cpu("sesame"), cpu("tls"), `${med("sesame", (r) => r.majorGcs)} / ${med("tls", (r) => r.majorGcs)}`, Number.isNaN(steal) ? "n/a" : `${(steal * 100).toFixed(0)}%`]);
    }
    progress("backbone", 1, 1);
    const stats = client.stats;
    sock.destroy();
    await client.close();
    return table(["payload", "messages/run", "sesame MB/s", "TLS 1.3 MB/s", "sesame/TLS", "sesame CPU ms/MB send (kernel, main thread) / recv", "TLS CPU ms/MB send (kernel, main thread) / recv", "major GCs per run", "stolen"], rows) +
      `\n\nMedians of ${ROUNDS} runs of ~${RUN_BYTES >> 20} MiB each; receiver in a child process, sender here, loopback TCP.` +
      "\nCPU ms/MB: process CPU time (user + system) per MB moved, on each side, the sender's system (kernel) part and its main thread's (10 ms steps) in brackets; on a shared machine it is the steadier figure." +
      " Major GCs per run: the sender's collections other than scavenges (their marking runs on V8's helper threads, which the sender's CPU counts and its main thread does not)." +
      " Stolen: the share of the machine's CPU time the hypervisor took during the runs (median of every run of the size, both protocols)." +
      `\nsesame: extreme format, AES-256-GCM, batches up to ${DEFAULT_PEER.batchBytes >> 10} KiB per record (${stats.batches} records for ${stats.sent} messages in all; ` +
      `${stats.connections} connection(s), ${stats.resent} messages resent).` +
      `\nTLS: ${protocol}, ${material.how}; 4-byte length prefix per message, reassembled by the receiver.`;
  } finally {
    child.disconnect();
  }
}

function label(size: number): string {
  return size >= 1 << 20 ? `${size >> 20} MiB` : `${size >> 10} KiB`;
}

if (process.argv[2] === RECEIVER) void receiverMain();
