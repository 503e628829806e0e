// Who may do what on the embedded broker: the same rules an operator writes in a Mosquitto ACL file
// (deploy/mosquitto/acl), decided here per client identity. Pure: no sockets, so every rule is tested alone.
//
//   controller   publishes <prefix>/devices/+/up and .../events, subscribes to .../+/down
//   application  read: receives up and events of its devices; command: publishes down of its devices
//   anyone else  nothing (anonymous clients never get this far: the broker refuses them at CONNECT)
//
// Nobody publishes retained messages: readings are a stream, not state, and a retained message is memory the
// broker keeps for as long as it runs. A wildcard subscription (sesame/#, sesame/devices/+/up) is allowed when
// it can match something the client may read; what it then receives is filtered message by message, so a
// credential scoped to device A never gets B's readings whatever filter it uses.
import type { Topics } from "./mqtt-topics";

export type MqttAccess = "read" | "command" | "both";

export type MqttIdentity =
  | { kind: "controller"; username: string }
  | { kind: "application"; username: string; devices: "all" | ReadonlySet<string>; access: MqttAccess };

/** Why a publish is refused, as a metric label; undefined when it is allowed. */
export type PublishRefusal = "retain" | "not-allowed" | "reserved";

export class MqttAcl {
  constructor(readonly topics: Topics) {}

  publishRefusal(who: MqttIdentity | undefined, topic: string, retain: boolean): PublishRefusal | undefined {
    if (topic.startsWith("$")) return "reserved";
    if (who === undefined) return "not-allowed";
    if (retain) return "retain";
    const t = this.topics.parse(topic);
    if (t === undefined) return "not-allowed";
    if (who.kind === "controller") return t.kind === "up" || t.kind === "events" ? undefined : "not-allowed";
    return t.kind === "down" && mayCommand(who) && inScope(who, t.device) ? undefined : "not-allowed";
  }

  /** Whether a message on `topic` may be delivered to `who` (checked for every message, wildcards or not). */
  mayReceive(who: MqttIdentity | undefined, topic: string): boolean {
    const t = this.topics.parse(topic);
    if (who === undefined || t === undefined) return false;
    if (who.kind === "controller") return t.kind === "down";
    return t.kind !== "down" && mayRead(who) && inScope(who, t.device);
  }

  /** Whether subscribing to `filter` could ever deliver anything to `who`; a filter that cannot is refused. */
  maySubscribe(who: MqttIdentity | undefined, filter: string): boolean {
    if (who === undefined || filter.startsWith("$")) return false;
    if (who.kind === "controller") return this.filterReaches(filter.split("/"), () => true, ["down"]);
    if (!mayRead(who)) return false;
    return this.filterReaches(filter.split("/"), (level) => level === "+" || inScope(who, level), ["up", "events"]);
  }

  /** Whether the filter matches some <prefix>/devices/<device>/<kind> with an acceptable device and kind. */
  private filterReaches(levels: string[], deviceOk: (level: string) => boolean, kinds: string[]): boolean {
    const wanted = [...this.topics.prefix.split("/"), "devices"];
    for (let i = 0; i < wanted.length; i++) {
      if (levels[i] === "#") return true;
      if (levels[i] !== "+" && levels[i] !== wanted[i]) return false;
    }
    const [device, kind, ...more] = levels.slice(wanted.length);
    if (device === undefined) return false;
    if (device === "#") return true;
    if (!deviceOk(device) || kind === undefined) return false;
    if (kind === "#") return true;
    return more.length === 0 && (kind === "+" || kinds.includes(kind));
  }
}

function mayRead(a: { access: MqttAccess }): boolean {
  return a.access === "read" || a.access === "both";
}

function mayCommand(a: { access: MqttAccess }): boolean {
  return a.access === "command" || a.access === "both";
}

function inScope(a: { devices: "all" | ReadonlySet<string> }, device: string): boolean {
  return a.devices === "all" || a.devices.has(device);
}
