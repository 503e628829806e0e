// Admission of TCP connections that have not authenticated yet, for a listener whose peer proves who it is
// in its first message(s): the backbone (the gateway's I2 and CONFIRM), the simulator link (its answer to
// the challenge). Until then a connection is "pending"; what it may cost is bounded here, per source and
// in total, and a pending connection that has not spoken in time is dropped.
//
// A newcomer is never refused because of older pending connections when it can take the place of one:
//   - past `perSource` pending connections from its own source, the oldest silent one of that source goes;
//   - past `maxPending` in all, the oldest silent one from a source no peer ever authenticated from goes
//     (and, if the newcomer's own source is known, the oldest silent one of all once strangers are gone).
// A connection stops being "silent" when its first message was accepted (spoke()): after that only its
// handshake deadline ends it, so a flood of connections that say nothing cannot push out a peer that has
// answered. Sources (an IPv4 address, an IPv6 /64) from which a peer authenticated are remembered, least
// recently authenticated forgotten first, so a flood from elsewhere never displaces them.
//
// What it guarantees, with R the rate of a silent flood and T a peer's round trip plus its first message's
// computation: a peer whose source is known gets in whatever any number of other sources do; a peer from
// a source no one authenticated from yet gets in while T < maxPending / R (flooding sources beyond the
// first perSource); a peer sharing its source with the flood gets in while T < perSource / R. Beyond that
// rate a flood from the peer's own address (the same host, the same NAT) keeps it out: there the fix is
// the host's, not the listener's.
export type AdmissionLimits = {
  /** Pending (not yet authenticated) connections at once. */
  maxPending: number;
  /** Of which from one source. */
  perSource: number;
  /** A pending connection that has not spoken within this many ms is dropped. */
  silentMs: number;
  /** Sources remembered for having authenticated a peer. */
  knownSources: number;
};

export type AdmissionStats = { admitted: number; evicted: number; refused: number; silent: number };

export type Ticket = {
  readonly source: string;
  readonly known: boolean;
  spoke: boolean;
  readonly drop: (why: "evicted" | "silent") => void;
  timer: NodeJS.Timeout | undefined;
};

export class Admission {
  readonly stats: AdmissionStats = { admitted: 0, evicted: 0, refused: 0, silent: 0 };
  /** In order of arrival: the first match of a scan is the oldest. */
  private readonly pending = new Set<Ticket>();
  /** In order of the latest authentication from each source. */
  private readonly known = new Set<string>();

  constructor(readonly limits: AdmissionLimits) {
    if (!(limits.perSource >= 1 && limits.maxPending >= limits.perSource)) throw new RangeError("admission: need 1 <= perSource <= maxPending");
  }

  get size(): number {
    return this.pending.size;
  }

  /**
   * A new connection from `address`: a ticket, or undefined when it is refused (close it). `drop` closes the
   * connection when it is evicted or stays silent too long; settle() is not needed after a drop.
   */
  admit(address: string | undefined, drop: (why: "evicted" | "silent") => void): Ticket | undefined {
    const source = sourceOf(address);
    const known = this.known.has(source);
    let sameSource = 0;
    for (const t of this.pending) if (t.source === source) sameSource++;
    let victim: Ticket | undefined;
    if (sameSource >= this.limits.perSource) {
      victim = this.oldest((t) => !t.spoke && t.source === source);
      if (victim === undefined) return this.refuse();
    } else if (this.pending.size >= this.limits.maxPending) {
      victim = this.oldest((t) => !t.spoke && !t.known) ?? (known ? this.oldest((t) => !t.spoke) : undefined);
      if (victim === undefined) return this.refuse();
    }
    if (victim !== undefined) this.end(victim, "evicted");
    const ticket: Ticket = { source, known, spoke: false, drop, timer: undefined };
    ticket.timer = setTimeout(() => {
      if (!ticket.spoke && this.pending.has(ticket)) this.end(ticket, "silent");
    }, this.limits.silentMs).unref();
    this.pending.add(ticket);
    this.stats.admitted++;
    return ticket;
  }

  /** The peer's first message was accepted: it is no longer evicted for newcomers. */
  spoke(t: Ticket): void {
    t.spoke = true;
    clearTimeout(t.timer);
  }

  /** The connection left the pending set: closed, or `authenticated` (its source is remembered). */
  settle(t: Ticket, authenticated: boolean): void {
    clearTimeout(t.timer);
    this.pending.delete(t);
    if (!authenticated) return;
    this.known.delete(t.source); // re-insert: Set order is recency order
    this.known.add(t.source);
    if (this.known.size > this.limits.knownSources) this.known.delete(this.known.values().next().value as string);
  }

  private oldest(match: (t: Ticket) => boolean): Ticket | undefined {
    for (const t of this.pending) if (match(t)) return t;
    return undefined;
  }

  private end(t: Ticket, why: "evicted" | "silent"): void {
    this.settle(t, false);
    this.stats[why]++;
    t.drop(why);
  }

  private refuse(): undefined {
    this.stats.refused++;
    return undefined;
  }
}

/**
 * What counts as one source: an IPv4 address (also when mapped into IPv6), or an IPv6 /64, the block one
 * host or one customer is given, so an attacker holding a /64 is one source, not 2^64.
 */
export function sourceOf(address: string | undefined): string {
  if (address === undefined || address === "") return "unknown";
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1];
  if (!address.includes(":")) return address;
  const bare = address.split("%")[0].toLowerCase();
  const [head, tail] = bare.includes("::") ? bare.split("::") : [bare, undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":") + "::/64";
}
