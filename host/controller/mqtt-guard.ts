// The embedded broker's door, before aedes sees a byte: which connections may even start, and how large an
// MQTT packet may be.
//
// aedes (through mqtt-packet) buffers a whole packet before it looks at it, up to the protocol's 256 MB, and
// has no option to refuse one sooner. GuardedConnection sits between the socket and aedes and reads only the
// fixed header of each packet (type byte, remaining length): a packet announced larger than the bound cuts the
// connection at once, after at most one socket read of it. MQTT 3.1.1 has no way to say "too large" (Mosquitto's
// max_packet_size also disconnects), so the refusal is the disconnect, counted and logged by the broker.
//
// ConnectGate bounds the connections that have not authenticated yet, per remote address and in total, and
// refuses at once an address whose failed logins emptied its token bucket.
import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { RateLimiter, type BucketSpec } from "./ratelimit";

export type FrameProblem = "oversize" | "malformed";

const HEADER = 0, LENGTH = 1, BODY = 2;

/** Follows MQTT packet boundaries through a byte stream, reading only each packet's fixed header. */
export class MqttFrameScanner {
  private state = HEADER;
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;

  constructor(readonly maxPacketBytes: number) {}

  /** Undefined while every packet so far fits; the problem as soon as one does not. */
  scan(chunk: Uint8Array): FrameProblem | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === BODY) {
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = HEADER;
      } else if (this.state === HEADER) {
        i++;
        this.state = LENGTH;
        this.remaining = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else {
        const b = chunk[i++];
        this.remaining += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (1 + this.lengthBytes + this.remaining > this.maxPacketBytes) return "oversize";
        if (b & 0x80) {
          if (this.lengthBytes === 4) return "malformed";
          continue;
        }
        this.state = this.remaining === 0 ? HEADER : BODY;
      }
    }
    return undefined;
  }
}

/** A socket as aedes reads it, with every packet's size checked on the way in. */
export class GuardedConnection extends Duplex {
  readonly remoteAddress: string;
  /** Set by aedes (conn.client): the client this connection carries. */
  client?: unknown;
  private readonly scanner: MqttFrameScanner;

  /** `ticket` is this connection's place among the unauthenticated ones, released by authenticated() or close. */
  constructor(private readonly socket: Socket, maxPacketBytes: number, private readonly ticket: PendingTicket, onProblem: (p: FrameProblem) => void) {
    super({ allowHalfOpen: false });
    this.remoteAddress = socket.remoteAddress ?? "unknown";
    this.scanner = new MqttFrameScanner(maxPacketBytes);
    socket.on("data", (chunk: Buffer) => {
      const problem = this.scanner.scan(chunk);
      if (problem !== undefined) {
        onProblem(problem);
        socket.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("close", () => {
      ticket.release();
      this.destroy();
    });
    socket.on("error", (err) => this.destroy(err));
  }

  authenticated(): void {
    this.ticket.release();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.socket.write(chunk)) done();
    else this.socket.once("drain", () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(() => done());
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }
}

export type GateLimits = {
  /** Connections from one address that have not authenticated yet. */
  pendingPerAddress: number;
  /** Connections that have not authenticated yet, from everywhere. */
  pendingTotal: number;
  /** Failed logins an address may make: `burst` at once, refilled at `perSecond`. */
  failures: BucketSpec;
};

export type GateRefusal = "throttled" | "too-many-pending";

/** Released once the connection authenticates or closes, whichever comes first. */
export type PendingTicket = { release(): void };

export class ConnectGate {
  private readonly pending = new Map<string, number>();
  private pendingTotal = 0;
  private readonly failures: RateLimiter;

  constructor(private readonly limits: GateLimits, now?: () => number) {
    this.failures = new RateLimiter(limits.failures, 10_000, now);
  }

  /** A ticket for a new connection from `address`, or why it is refused before it sends a byte. */
  admit(address: string): PendingTicket | GateRefusal {
    if (!this.failures.peek(address).ok) return "throttled";
    const mine = this.pending.get(address) ?? 0;
    if (mine >= this.limits.pendingPerAddress || this.pendingTotal >= this.limits.pendingTotal) return "too-many-pending";
    this.pending.set(address, mine + 1);
    this.pendingTotal++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.pendingTotal--;
        const n = (this.pending.get(address) ?? 1) - 1;
        if (n === 0) this.pending.delete(address);
        else this.pending.set(address, n);
      },
    };
  }

  /** A failed login from `address`: spends a token of its bucket. */
  failed(address: string): void {
    this.failures.take(address);
  }

  /** Whether `address` may still try to log in. */
  mayTry(address: string): boolean {
    return this.failures.peek(address).ok;
  }

  get waiting(): number {
    return this.pendingTotal;
  }
}

/**
 * Two connected in-memory streams: what one side writes, the other reads. The controller's own client reaches
 * its embedded broker this way, never through the network door (so no one can throttle or crowd it out).
 * No backpressure: the controller bounds what it has in flight itself (Delivery's maxInflight).
 */
export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const side = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        other().push(chunk);
        done();
      },
      final(done) {
        other().push(null);
        done();
      },
      destroy(err, done) {
        if (!other().destroyed) other().destroy();
        done(err);
      },
    });
  sides.push(side(() => sides[1]), side(() => sides[0]));
  return [sides[0], sides[1]];
}
