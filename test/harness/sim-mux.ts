// Several simulated fleets on one simulator link (the gateway takes one simulator connection at a time):
// each fleet gets a port of its own, and the gateway's packets go back to the fleet that owns their link.
// Fleets must use distinct links (BLE boards of distinct names; at most one fleet on LoRa).
import type { DownPacket, Uplink } from "../../host/gateway/devices";
import type { SimLinkClient } from "../../host/gateway/simlink";
import type { GatewayPort } from "../../host/sim/fleet";

export function simMux(client: SimLinkClient): () => GatewayPort {
  const owners = new Map<string, DownPacket[]>();
  const sort = () => {
    for (const p of client.takeOutput()) owners.get(p.link)?.push(p);
  };
  return () => {
    const mine: DownPacket[] = [];
    const own = (link: string) => void (owners.has(link) || owners.set(link, mine));
    return {
      input: (link, packet, now, signal) => (own(link), client.input(link, packet, now, signal)),
      connected: (link) => (own(link), client.connected(link)),
      poll: () => {},
      takeOutput: () => (sort(), mine.splice(0)),
      takeUplinks: (): Uplink[] => [],
    };
  };
}
