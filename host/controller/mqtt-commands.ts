// Commands arriving on <prefix>/devices/<id>/down (./mqtt-topics.ts), handed to the controller's handler.
// Untrusted input: a malformed one is counted, logged and answered with a command-rejected event, never a
// throw; whether a well-formed command for an unknown device is accepted is the handler's call.
//
// The broker hears a command was taken (its PUBACK) only once handle()'s promise settles (./mqtt.ts holds the
// client's acknowledgement until then), so a handler that stores the command before it answers never lets
// the broker forget one it did not store. On a shared subscription (several controllers) that is what makes
// a command taken once: by the one controller the broker gave it to.
import type { LimitedWarnings, Logger } from "../telemetry/log";
import type { Metrics } from "../telemetry/metrics";
import { parseCommand, type Topics } from "./mqtt-topics";

/** What the controller answers to a command: nothing or true = taken, false or {rejected} = refused. */
export type CommandVerdict = void | boolean | { rejected: string };
export type CommandHandler = (deviceId: string, payload: Uint8Array, meta: { confirmed: boolean }) => CommandVerdict | Promise<CommandVerdict>;

export type CommandStats = { commands: number; malformed: number; rejected: number; failed: number };

export type CommandIntakeOptions = {
  topics: Topics;
  maxCommandBytes: number;
  handler: CommandHandler | undefined;
  /** Counted here (Delivery's stats). */
  stats: CommandStats;
  metrics?: Metrics;
  log: Logger;
  warnings: LimitedWarnings;
  /** Tells the application something about its device (best effort: never throws). */
  event: (device: string, event: string, reason: string) => void;
};

export class CommandIntake {
  constructor(private readonly o: CommandIntakeOptions) {}

  /** One PUBLISH on a down topic; resolves once the handler's verdict is in (or it failed). Never rejects. */
  async handle(topic: string, body: Uint8Array): Promise<void> {
    const { o } = this;
    const device = o.topics.deviceOfDown(topic);
    if (device === undefined) return this.refuse(undefined, "malformed", `topic ${topic} is not ${o.topics.prefix}/devices/<id>/down`, body.byteLength);
    const parsed = parseCommand(body, o.maxCommandBytes);
    if (!parsed.ok) return this.refuse(device, "malformed", parsed.reason, body.byteLength);
    if (o.handler === undefined) return this.refuse(device, "rejected", "this controller takes no commands", body.byteLength);
    let v: CommandVerdict;
    try {
      v = await o.handler(device, parsed.command.payload, { confirmed: parsed.command.confirmed });
    } catch (err) {
      o.stats.failed++;
      o.metrics?.mqttCommand("failed");
      o.log.error("command handler failed", { device, error: err });
      return o.event(device, "command-rejected", "the controller failed to handle it");
    }
    if (v === false) return this.refuse(device, "rejected", "refused by the controller (unknown device?)", body.byteLength);
    if (typeof v === "object" && v !== null) return this.refuse(device, "rejected", String(v.rejected), body.byteLength);
    o.stats.commands++;
    o.metrics?.mqttCommand("delivered");
    o.log.debug("command delivered", { device, size: parsed.command.payload.byteLength, confirmed: parsed.command.confirmed });
  }

  private refuse(device: string | undefined, outcome: "malformed" | "rejected", reason: string, size: number): void {
    if (outcome === "malformed") this.o.stats.malformed++;
    else this.o.stats.rejected++;
    this.o.metrics?.mqttCommand(outcome);
    this.o.warnings.warn(outcome === "malformed" ? "malformed command dropped" : "command rejected", { device, reason, size });
    if (device !== undefined) this.o.event(device, "command-rejected", reason);
  }
}
