// The device keys the terminate gateways connected to this controller hold (KEYS grants), kept in step with
// the registry: every device's grant when a gateway connects, and each device whose key generation changed
// (provisioned, rotated, evolved, revoked: by whichever controller of a cluster, read every refreshMs; a
// device this controller provisioned or rotated at once, before its admin call answers).
import type { KeyTable } from "../gateway/keytable";
import { RESPONDER_GRANT } from "../gateway/gateway";
import type { DeviceRecord, Registry } from "./registry";

export type KeyGrantsOptions = {
  registry: Registry;
  keys: KeyTable;
  /** The responder's own key pair, granted first to every gateway. */
  responderGrant: string;
  /** The terminate gateways connected here now (the others get everything when they connect). */
  gateways: () => string[];
  send: (gateway: string, device: string, grant: string) => void;
  /** A device revoked or rotated: the sessions this controller ends itself go now (told before its keys go). */
  ending: (device: string) => void;
};

export class KeyGrants {
  /** Devices granted, with the key generation and rotation they were granted at. */
  private readonly known = new Map<string, { generation: number; rotatedAt: string | null }>();
  /** Reads of the registry run one at a time: two would interleave their awaits on the same `known` entry. */
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly o: KeyGrantsOptions) {}

  /**
   * Grants what the registry has and the table lacks (provisioned, rotated, evolved since), and withdraws what
   * it no longer has (revoked): by whichever controller, so every controller's gateways follow.
   */
  refresh(): Promise<void> {
    return this.serially(async () => {
      const live = await this.o.registry.list({ includeRevoked: false });
      const ids = new Set(live.map((d) => d.id));
      for (const id of [...this.known.keys()]) if (!ids.has(id)) this.withdraw(id);
      for (const d of live) await this.follow(d);
    });
  }

  /** The same for one device (provisioned or rotated here): its grant goes out now, not at the next refresh. */
  refreshDevice(id: string): Promise<void> {
    return this.serially(async () => {
      const d = await this.o.registry.get(id);
      if (d !== undefined && d.revokedAt === null) await this.follow(d);
      else if (this.known.has(id)) this.withdraw(id);
    });
  }

  private serially(run: () => Promise<void>): Promise<void> {
    const next = this.running.then(run);
    this.running = next.catch(() => {});
    return next;
  }

  /** Grants a live device's keys if they changed since it was last granted. */
  private async follow(d: DeviceRecord): Promise<void> {
    const k = this.known.get(d.id);
    if (k?.generation === d.generation) return;
    // Rotated elsewhere: its sessions end first, as the controller that rotated it ended its own.
    if (k !== undefined && k.rotatedAt !== d.rotatedAt) this.withdraw(d.id);
    this.known.set(d.id, { generation: d.generation, rotatedAt: d.rotatedAt });
    if (d.mode === "psk") {
      const keys = await this.o.registry.lookupPsk(d.id);
      if (keys) this.o.keys.setPsk(d.id, { current: keys.current, previous: keys.previous });
    } else if (d.kid && d.publicKey) {
      this.o.keys.setDh(d.id, d.kid, Uint8Array.from(Buffer.from(d.publicKey, "hex")));
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

  /** Everything, to a gateway that connected. */
  grantGateway(gw: string): void {
    this.o.send(gw, RESPONDER_GRANT, this.o.responderGrant);
    for (const id of this.known.keys()) this.o.send(gw, id, this.o.keys.grant(id));
  }

  private grantAll(device: string): void {
    for (const gw of this.o.gateways()) this.o.send(gw, device, this.o.keys.grant(device));
  }
}
