// The gateways as the controller sees them, for the fleet view: each configured gateway, whether its
// backbone session is up, what waits in the queue to it (sent, not yet acknowledged by it) and what it
// sent that is not durable here yet (held until MQTT or the database has it), and the gateway's own queues as
// it last reported them (GATEWAY_STATUS, ./reports.ts; null until it has, or when it is connected elsewhere).
import type { DurableAcks } from "../../backbone/durable";
import type { BackboneServer } from "../../backbone/link";
import type { GatewayRow } from "./feed";
import type { GatewayReports } from "./reports";

export function gatewayRows(configured: { kid: string; mode: string }[], server: BackboneServer | undefined, acks: ReadonlyMap<string, DurableAcks>, reports: GatewayReports): Omit<GatewayRow, "readings">[] {
  return configured.map((g) => {
    const kid = g.kid.toLowerCase();
    const peer = server?.peers.get(kid);
    return {
      kid, mode: g.mode, connected: peer?.connected ?? false,
      queueToGateway: peer?.out.count ?? 0, awaitingDurable: acks.get(kid)?.outstanding ?? 0, received: peer?.stats.delivered ?? 0,
      reported: reports.queues(kid),
    };
  });
}
