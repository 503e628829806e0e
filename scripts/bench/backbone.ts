// Bulk throughput over the gateway <-> controller backbone (an extreme-format AES-256-GCM session over TCP,
// host/backbone/) next to the same bytes over Node's own TLS 1.3 on loopback, measured in the same run.
//
// Both are set up the same way: the receiving end (the controller) and the sending end (the gateway) are two
// child processes started as `sesame start` starts its own (SESAME_NODE_FLAGS), so each side has its own
// event loop and its own heap as in a deployment (not this one's, which holds every bench module and what
// earlier sections left); connections are made once, before timing (a backbone is long-lived). A run sends
// messages of one size back to back, honouring backpressure, and ends when the receiver has every byte;
// MB/s counts payload bytes (10^6 bytes per MB).
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
import { SESAME_NODE_FLAGS } from "../../host/cli/spawn";
import { countCollections, cpuTicks, mainThreadCpuMs, median, progress, stealShare, table } from "../lib/measure";

const SIZES = [1 << 10, 64 << 10, 1 << 20, 10 << 20];
const RUN_BYTES = 64 << 20; // per run (at least 4 messages)
const ROUNDS = Number(process.env.SESAME_BENCH_ROUNDS ?? 7);
const RECEIVER = "--backbone-bench-receiver";
const SENDER = "--backbone-bench-sender";
/** MB of live objects the sender holds besides the link (SESAME_BACKBONE_SENDER_HEAP_MB): 0 is a bare gateway. */
const SENDER_HEAP_MB = Number(process.env.SESAME_BACKBONE_SENDER_HEAP_MB ?? 0);
const V13 = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3", ciphers: "TLS_AES_256_GCM_SHA384" } as const;

type Init = { ctlS: string; ctlP: string; kid: string; gwS: string; gwP: string; tls: Tls };
type Tls = { how: string; key?: string; cert?: string; psk?: string };
type ToChild = { cmd: "init"; init: Init } | { cmd: "expect"; bytes: number };
type FromChild = { ready: true; sesame: number; tls: number } | { armed: true } | { done: true; cpuMs: number; at: number };

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const now = () => performance.timeOrigin + performance.now(); // comparable across processes

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
      send({ done: true, cpuMs: (c.user + c.system) / 1e3, at: now() });
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

// ---- the sending process ------------------------------------------------------------------------------------

type Sender = (payload: Buffer, n: number) => Promise<void>;
/** What the sender measured over one run: CPU ms in all (user + system), in the kernel and on its main thread, and its collections other than scavenges. */
type SenderRun = { startedAt: number; cpuMs: number; sysMs: number; mainMs: number; majorGcs: number };
type ToSender = { cmd: "init"; init: Init; ports: { sesame: number; tls: number }; heapMb: number } | { cmd: "run"; proto: string; size: number; n: number } | { cmd: "stop" } | { cmd: "stats" };
type FromSender = { ready: true; protocol: string; heapMb: number } | SenderRun | { stats: BackboneClient["stats"] };

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

/** Live objects standing for a gateway's state (its device table, sessions, code), for the collector to mark. */
const ballast: unknown[] = [];
function holdLiveHeap(mb: number): void {
  for (let i = 0; i < mb * 8192; i++) ballast.push({ id: i, seen: i * 2, name: `d${i}`, window: [i, i + 1] });
}

async function senderMain(): Promise<void> {
  const send = (m: FromSender) => process.send!(m);
  let client: BackboneClient | undefined;
  let senders = new Map<string, Sender>();
  let payload = Buffer.alloc(0);
  let measuring: { cpu: NodeJS.CpuUsage; main: number; gcs: ReturnType<typeof countCollections>; startedAt: number } | undefined;
  process.on("message", async (m: ToSender) => {
    if (m.cmd === "init") {
      const { init, ports } = m;
      holdLiveHeap(m.heapMb);
      const gw = { s: unhex(init.gwS), S: unhex(init.gwP) };
      client = new BackboneClient({ host: "127.0.0.1", port: ports.sesame, identity: { kid: unhex(init.kid), keys: gw }, controllerKey: unhex(init.ctlP) }).start();
      await once(client, "connected");
      const sock = tls.connect({ port: ports.tls, host: "127.0.0.1", ...tlsClientOptions(init.tls) });
      await once(sock, "secureConnect");
      senders = new Map([["sesame", sesameSender(client)], ["tls", tlsSender(sock)]]);
      return send({ ready: true, protocol: `${sock.getProtocol()} ${sock.getCipher().standardName}`, heapMb: Math.round(process.memoryUsage().heapUsed / 1e6) });
    }
    if (m.cmd === "run") {
      if (payload.length !== m.size) payload = randomBytes(m.size);
      measuring = { cpu: process.cpuUsage(), main: mainThreadCpuMs(), gcs: countCollections(), startedAt: now() };
      return void senders.get(m.proto)!(payload, m.n);
    }
    if (m.cmd === "stats") return send({ stats: client!.stats });
    if (measuring !== undefined) {
      const c = process.cpuUsage(measuring.cpu);
      const run = { startedAt: measuring.startedAt, cpuMs: (c.user + c.system) / 1e3, sysMs: c.system / 1e3, mainMs: mainThreadCpuMs() - measuring.main, majorGcs: measuring.gcs.stop().major };
      measuring = undefined;
      send(run);
    }
  });
  process.on("disconnect", () => process.exit(0));
}

// ---- this process: runs the two and collects the figures ---------------------------------------------------

/** CPU ms per MB on each side (the sender's kernel part and its main thread's too), the collections other than scavenges in the sender, and the share of the machine's CPU time the hypervisor stole meanwhile. */
type Run = { mbps: number; sendCpu: number; sendSys: number; sendMain: number; majorGcs: number; recvCpu: number; steal: number };

export async function benchBackbone(): Promise<string> {
  const ctl = backboneKeyPair();
  const gw = backboneKeyPair();
  const kid = randomBytes(4);
  const material = tlsMaterial();
  const init: Init = { ctlS: hex(ctl.s), ctlP: hex(ctl.S), kid: hex(kid), gwS: hex(gw.s), gwP: hex(gw.S), tls: material };
  const spawn = (role: string): ChildProcess => fork(fileURLToPath(import.meta.url), [role], { execArgv: [...SESAME_NODE_FLAGS, "--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const receiver = spawn(RECEIVER);
  const sender = spawn(SENDER);
  const fromReceiver = () => once(receiver, "message").then(([m]) => m as FromChild);
  const fromSender = () => once(sender, "message").then(([m]) => m as FromSender);
  try {
    receiver.send({ cmd: "init", init } satisfies ToChild);
    const { sesame, tls: tlsPort } = (await fromReceiver()) as { sesame: number; tls: number };
    sender.send({ cmd: "init", init, ports: { sesame, tls: tlsPort }, heapMb: SENDER_HEAP_MB } satisfies ToSender);
    const { protocol, heapMb } = (await fromSender()) as { protocol: string; heapMb: number };

    /** One run: MB/s from the sender's first send until the receiver has every byte, and CPU ms per MB on each side. */
    const run = async (proto: string, size: number, n: number): Promise<Run> => {
      receiver.send({ cmd: "expect", bytes: size * n } satisfies ToChild);
      await fromReceiver();
      const done = fromReceiver() as Promise<{ cpuMs: number; at: number }>;
      const ticks = cpuTicks();
      sender.send({ cmd: "run", proto, size, n } satisfies ToSender);
      const { cpuMs, at } = await done;
      sender.send({ cmd: "stop" } satisfies ToSender);
      const s = (await fromSender()) as SenderRun;
      const mb = (size * n) / 1e6;
      return { mbps: mb / ((at - s.startedAt) / 1e3), sendCpu: s.cpuMs / mb, sendSys: s.sysMs / mb, sendMain: s.mainMs / mb, majorGcs: s.majorGcs, recvCpu: cpuMs / mb, steal: stealShare(ticks, cpuTicks()) };
    };

    const protocols = ["sesame", "tls"];
    const rows: (string | number)[][] = [];
    let step = 0;
    for (const size of SIZES) {
      const n = Math.max(4, Math.ceil(RUN_BYTES / size));
      const results = new Map<string, Run[]>(protocols.map((p) => [p, []]));
      for (const p of protocols) await run(p, size, Math.max(2, n >> 2)); // warm up
      for (let r = 0; r < ROUNDS; r++) {
        progress(`backbone: ${size} B`, step++, SIZES.length * ROUNDS);
        // Alternate who goes first, so neither always runs on a warmer machine.
        for (const p of r % 2 === 0 ? protocols : [...protocols].reverse()) results.get(p)!.push(await run(p, size, n));
      }
      const med = (name: string, f: (r: Run) => number) => median(results.get(name)!.map(f));
      const s = med("sesame", (r) => r.mbps);
      const t = med("tls", (r) => r.mbps);
      const cpu = (name: string) => `${med(name, (r) => r.sendCpu).toFixed(2)} (${med(name, (r) => r.sendSys).toFixed(2)}, ${med(name, (r) => r.sendMain).toFixed(1)}) / ${med(name, (r) => r.recvCpu).toFixed(2)}`;
      const steal = median([...results.values()].flat().map((r) => r.steal));
      rows.push([label(size), n, s.toFixed(0), t.toFixed(0), (s / t).toFixed(2) + "x", cpu("sesame"), cpu("tls"), `${med("sesame", (r) => r.majorGcs)} / ${med("tls", (r) => r.majorGcs)}`, Number.isNaN(steal) ? "n/a" : `${(steal * 100).toFixed(0)}%`]);
    }
    progress("backbone", 1, 1);
    sender.send({ cmd: "stats" } satisfies ToSender);
    const { stats } = (await fromSender()) as { stats: BackboneClient["stats"] };
    return table(["payload", "messages/run", "sesame MB/s", "TLS 1.3 MB/s", "sesame/TLS", "sesame CPU ms/MB send (kernel, main thread) / recv", "TLS CPU ms/MB send (kernel, main thread) / recv", "major GCs per run", "stolen"], rows) +
      `\n\nMedians of ${ROUNDS} runs of ~${RUN_BYTES >> 20} MiB each; sender and receiver each in a child process of their own, loopback TCP; the sender's heap held ${heapMb} MB` +
      (SENDER_HEAP_MB > 0 ? ` (${SENDER_HEAP_MB} MB of it live objects standing for a gateway's state, SESAME_BACKBONE_SENDER_HEAP_MB).` : " (SESAME_BACKBONE_SENDER_HEAP_MB=N adds N MB of live objects, as a busy gateway's state).") +
      "\nCPU ms/MB: process CPU time (user + system) per MB moved, on each side, the sender's system (kernel) part and its main thread's (10 ms steps) in brackets; on a shared machine it is the steadier figure." +
      " Major GCs per run: the sender's collections other than scavenges (their marking runs on V8's helper threads, which the sender's CPU counts and its main thread does not; its cost grows with the live heap)." +
      " Stolen: the share of the machine's CPU time the hypervisor took during the runs (median of every run of the size, both protocols)." +
      `\nsesame: extreme format, AES-256-GCM, batches up to ${DEFAULT_PEER.batchBytes >> 10} KiB per record (${stats.batches} records for ${stats.sent} messages in all; ` +
      `${stats.connections} connection(s), ${stats.resent} messages resent).` +
      `\nTLS: ${protocol}, ${material.how}; 4-byte length prefix per message, reassembled by the receiver.`;
  } finally {
    sender.disconnect();
    receiver.disconnect();
  }
}

function label(size: number): string {
  return size >= 1 << 20 ? `${size >> 20} MiB` : `${size >> 10} KiB`;
}

if (process.argv[2] === RECEIVER) void receiverMain();
if (process.argv[2] === SENDER) void senderMain();
