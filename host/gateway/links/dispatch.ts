// The gateway's output, packet by packet, to the link that owns the packet's link name: a BLE connection
// ("ble:<address>"), the LoRa modem ("lora"), or the simulator's link. Owners are asked in the order they
// were added, and the fallback (the simulator's link) last, so a real radio wins a name both could carry,
// even one that comes up after the gateway started.
import type { DownPacket } from "../devices";

export type LinkOwner = { owns: (link: string) => boolean; send: (p: DownPacket) => boolean };

export class LinkDispatcher {
  /** Packets no link owned, and packets their link could not take (down, or refused). Counted, not thrown. */
  unrouted = 0;
  undelivered = 0;
  private readonly owners: LinkOwner[] = [];

  constructor(private readonly fallback?: LinkOwner) {}

  add(owner: LinkOwner): void {
    this.owners.push(owner);
  }

  dispatch(packets: DownPacket[]): void {
    for (const p of packets) {
      const owner = this.owners.find((o) => o.owns(p.link)) ?? (this.fallback?.owns(p.link) ? this.fallback : undefined);
      if (!owner) this.unrouted++;
      else if (!owner.send(p)) this.undelivered++;
    }
  }
}
