// The device keys the terminate gateways connected to this controller hold (KEYS grants), kept in step with
// the registry: every device's grant when a gateway connects, and each device whose key generation changed
// (provisioned, rotated, evolved, revoked: by whichever controller of a cluster, read every refreshMs; a
// device this controller provisioned or rotated at once, before its admin call answers).
//
// The periodic read takes only the rows changed since the last one (./registry-changes.ts); a whole read
// still comes every FULL_EVERY_MS, and whenever a gateway connects.
import type { KeyTable } from "../gateway/keytable";
import { GRANTS_BEGIN, GRANTS_END, RESPONDER_GRANT } from "../gateway/gateway";
import type { DeviceRecord, PskKeyStore, Registry } from "./registry";
import { RegistryChanges } from "./registry-changes";

export type KeyGrantsOptions = {
  registry: Registry;
  keys: KeyTable;
  /** The responder's own key pair, granted first to every gateway. */
  responderGrant: string;
  /** The terminate gateways connected here now (the others get everything when they connect). */
  gateways: () => string[];
  /** Queues a grant for a gateway; false when its backbone queue is full (then drained(gateway) says when to go on). */
  send: (gateway: string, device: string, grant: string) => boolean;
  /** A device revoked or rotated: the sessions this controller ends itself go now (told before its keys go). */
  ending: (device: string) => void;
};

export class KeyGrants {
  /** Devices granted, with the key generation and rotation they were granted at. */
  private readonly known = new Map<string, { generation: number; rotatedAt: string | null }>();
  /** Reads of the registry run one at a time: two would interleave their awaits on the same `known` entry. */
  private running: Promise<void> = Promise.resolve();
  private readonly changes: RegistryChanges;
  /**
   * Per gateway, the devices whose grant its backbone queue refused, in order (RESPONDER_GRANT among them when
   * that one was): sent, as they are then, when the queue has room again. A gateway is granted every device when
   * it connects, 100,000 messages at 100,000 devices, and its queue (DEFAULT_QUEUE: 262,144 messages) may still
   * hold those of the connection before: refused grants were lost, and their devices could not get a session
   * through that gateway until their keys changed.
   */
  private readonly owed = new Map<string, Set<string>>();
  /** Rows the reads returned, for tests and reports: a changed-rows read returns only what changed. */
  readonly stats = { wholeReads: 0, changedReads: 0, rowsRead: 0 };

  constructor(private readonly o: KeyGrantsOptions) {
    this.changes = new RegistryChanges(o.registry, false);
  }

  /**
   * Grants what the registry has and the table lacks (provisioned, rotated, evolved since), and withdraws what
   * it no longer has (revoked): by whichever controller, so every controller's gateways follow.
   */
  refresh(): Promise<void> {
    return this.serially(() => this.read(true));
  }

  /** The periodic read: the rows changed since the last read (a whole read when one is due). */
  refreshChanged(): Promise<void> {
    return this.serially(() => this.read(false));
  }

  private read(whole: boolean): Promise<void> {
    return this.changes.read(async (rows, wasWhole) => {
      if (wasWhole) {
        this.stats.wholeReads++;
        // A whole read holds only live devices: any other granted one was revoked.
        const ids = new Set(rows.map((d) => d.id));
        for (const id of [...this.known.keys()]) if (!ids.has(id)) this.withdraw(id);
      } else {
        this.stats.changedReads++;
      }
      this.stats.rowsRead += rows.length;
      await this.followRows(rows);
    }, whole);
  }

  /** The same for one device (provisioned or rotated here): its grant goes out now, not at the next refresh. */
  refreshDevice(id: string): Promise<void> {
    return this.serially(async () => {
      const d = await this.o.registry.get(id);
      if (d !== undefined) await this.followRows([d]);
      else if (this.known.has(id)) this.withdraw(id);
    });
  }

  private serially(run: () => Promise<void>): Promise<void> {
    const next = this.running.then(run);
    this.running = next.catch(() => {});
    return next;
  }

  /**
   * Devices' rows as read: each followed while live, withdrawn once revoked. The psk keys of those whose keys
   * changed are read in one go (at 3,000 psk devices a query each took a second on PGlite).
   */
  private async followRows(rows: readonly DeviceRecord[]): Promise<void> {
    const due = rows.filter((d) => d.revokedAt === null && d.mode === "psk" && this.known.get(d.id)?.generation !== d.generation);
    const psk = await this.o.registry.lookupPskMany(due.map((d) => d.id));
    for (const d of rows) {
      if (d.revokedAt === null) this.follow(d, psk.get(d.id));
      else if (this.known.has(d.id)) this.withdraw(d.id);
    }
  }

  /** Grants a live device's keys (`psk`: its key store, if a psk device) if they changed since it was last granted. */
  private follow(d: DeviceRecord, psk: PskKeyStore | undefined): void {
    const k = this.known.get(d.id);
    if (k?.generation === d.generation) return;
    // Rotated elsewhere: its sessions end first, as the controller that rotated it ended its own.
    if (k !== undefined && k.rotatedAt !== d.rotatedAt) this.withdraw(d.id);
    this.known.set(d.id, { generation: d.generation, rotatedAt: d.rotatedAt });
    // The rotation's time goes with the keys: a gateway away when they were withdrawn ends the old sessions by it.
    const rotated = d.rotatedAt === null ? 0 : Date.parse(d.rotatedAt);
    if (d.mode === "psk") {
      if (psk) this.o.keys.setPsk(d.id, { current: psk.current, previous: psk.previous }, rotated);
    } else if (d.kid && d.publicKey) {
      this.o.keys.setDh(d.id, d.kid, Uint8Array.from(Buffer.from(d.publicKey, "hex")), rotated);
    }
    this.grantAll(d.id);
  }

  /** A device revoked or rotated: its sessions here end, terminate gateways end theirs on the withdrawn grant. */
  withdraw(device: string): void {
    this.o.ending(device);
    this.o.keys.remove(device);
    this.known.delete(device);
    this.grantAll(device);
  }

  /**
   * Everything, to a gateway that connected, between GRANTS_BEGIN and GRANTS_END: what it holds and was not
   * granted again was withdrawn while it was away (a withdrawal goes only to the gateways connected then).
   */
  grantGateway(gw: string): void {
    this.owed.delete(gw);
    this.sendAll(gw, [GRANTS_BEGIN, RESPONDER_GRANT, ...this.known.keys(), GRANTS_END]);
  }

  /** A gateway's backbone queue has room again: the grants it refused go now. */
  drained(gw: string): void {
    const owed = this.owed.get(gw);
    if (owed === undefined) return;
    this.owed.delete(gw);
    this.sendAll(gw, owed);
  }

  /** Grants owed to gateways, waiting for room in their queues (for tests and reports). */
  get owedCount(): number {
    let n = 0;
    for (const o of this.owed.values()) n += o.size;
    return n;
  }

  private grantAll(device: string): void {
    for (const gw of this.o.gateways()) {
      const owed = this.owed.get(gw);
      if (owed !== undefined) owed.add(device); // after the ones refused before it, in order
      else this.sendAll(gw, [device]);
    }
  }

  private grantOf(id: string): string {
    if (id === RESPONDER_GRANT) return this.o.responderGrant;
    return id === GRANTS_BEGIN || id === GRANTS_END ? "" : this.o.keys.grant(id);
  }

  /** Sends `ids`' grants to gw in order, until its queue refuses one: that one and the rest are owed. */
  private sendAll(gw: string, ids: Iterable<string>): void {
    let owed = this.owed.get(gw);
    for (const id of ids) {
      if (owed === undefined && this.o.send(gw, id, this.grantOf(id))) continue;
      if (owed === undefined) this.owed.set(gw, (owed = new Set()));
      owed.add(id);
    }
  }
}
