// Which controller hands a command to which gateway. The controller that took a command from MQTT is often
// not the one its device's gateway is connected to, so a command goes out when:
//
//   taken      the taker serves the device's gateway: at once; otherwise it NOTIFYs that gateway's name and
//              whichever controller serves it hands out its open commands;
//   gateway up a gateway connected here: every unclosed command routed to it goes (again) with its id: the
//              gateway may never have had it (its last controller died with it queued), and a copy it has
//              is recognised by its id;
//   moved      a device was heard through another gateway or another run of it (a restarted gateway holds
//              none of its commands), or first by this controller: all its unclosed commands go that way;
//   sweep      every few seconds each controller hands out the open commands of its gateways, in case a
//              NOTIFY was missed (the listening connection was being replaced).
//
// Gateways report what became of each (COMMAND_STATE): acked and lost close it; refused (no session with
// the device there) makes it wait for the device's next reading, which hands it again.
import type { Db } from "../db/db";
import type { Logger } from "../../telemetry/log";
import type { CommandBook, PendingCommand } from "./commands";
import type { Moved, RouteBook } from "./routes";

/** The NOTIFY channel whose payload is a gateway's kid: "it has open commands". */
export const COMMANDS_CHANNEL = "sesame_commands";

/**
 * Puts a command on its way to a gateway connected here: "handed" (queued for it), "refused" (it is
 * served here but cannot take it now: in relay mode, no session with the device here) or "away" (not
 * connected here: nothing done).
 */
export type Hand = (gateway: string, device: string, id: number, payload: Uint8Array) => "handed" | "refused" | "away";

export type DispatchOptions = {
  db: Db;
  book: CommandBook;
  routes: RouteBook;
  hand: Hand;
  /** The run of the gateway when it is connected here, else undefined. */
  serves: (gateway: string) => string | undefined;
  /** A command was closed or set waiting by what its gateway reported (for the application's events). */
  onSettled?: (device: string, id: number, state: "acked" | "lost" | "waiting") => void;
  log: Logger;
};

export type DispatchStats = { handed: number; refused: number; notified: number; settled: number };

export class CommandDispatch {
  readonly stats: DispatchStats = { handed: 0, refused: 0, notified: 0, settled: 0 };
  private unlisten: (() => Promise<void>) | undefined;

  constructor(private readonly o: DispatchOptions) {}

  async start(): Promise<void> {
    this.unlisten = await this.o.db.listen(COMMANDS_CHANNEL, (gw) => void this.run(() => this.notified(gw)));
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
  }

  /** A command was stored: hand it here or tell the controller that serves its device's gateway. */
  async taken(device: string, id: number, payload: Uint8Array): Promise<void> {
    const r = await this.o.routes.route(device);
    if (r === undefined) return; // never heard: it goes when the device is
    if (this.o.serves(r.gateway) !== undefined) await this.handOut([{ device, id, payload, gateway: r.gateway, run: r.run }]);
    else {
      this.stats.notified++;
      await this.o.db.query("SELECT pg_notify($1, $2)", [COMMANDS_CHANNEL, r.gateway]);
    }
  }

  /** A gateway connected here: everything unclosed routed to it. */
  async gatewayUp(gateway: string): Promise<void> {
    await this.handOut(await this.o.book.routedTo([gateway], true));
  }

  /** Devices heard somewhere new: their unclosed commands go there. */
  async moved(ms: readonly Moved[]): Promise<void> {
    if (ms.length === 0) return;
    const to = new Map(ms.map((m) => [m.device, m]));
    const rows = await this.o.book.unclosedOf([...to.keys()]);
    await this.handOut(rows.map((c) => ({ ...c, gateway: to.get(c.device)!.gateway, run: to.get(c.device)!.run })));
  }

  /** The backstop: open commands of the gateways connected here. */
  async sweep(gateways: readonly string[]): Promise<void> {
    await this.handOut(await this.o.book.routedTo(gateways, false));
  }

  /** What a gateway (or this controller's relay sessions) reported for a command. */
  async settle(device: string, id: number, report: "queued" | "acked" | "lost" | "refused"): Promise<void> {
    if (report === "queued") return; // it was marked sent when it was handed
    const state = report === "refused" ? "waiting" : report;
    // Refused: the gateway holds no session for the device; its next reading writes its route again, as moved.
    if (state === "waiting") this.o.routes.forget(device);
    if (await this.o.book.settle(device, id, state)) {
      this.stats.settled++;
      this.o.onSettled?.(device, id, state);
    }
  }

  private async notified(gateway: string): Promise<void> {
    if (this.o.serves(gateway) !== undefined) await this.handOut(await this.o.book.routedTo([gateway], false));
  }

  private async handOut(cs: readonly PendingCommand[]): Promise<void> {
    const handed = new Map<string, { device: string; id: number }[]>();
    for (const c of cs) {
      if (c.gateway === null) continue;
      const run = this.o.serves(c.gateway);
      if (run === undefined) continue;
      const r = this.o.hand(c.gateway, c.device, c.id, c.payload);
      if (r === "handed") {
        this.stats.handed++;
        const to = `${c.gateway}/${run}`;
        if (!handed.has(to)) handed.set(to, []);
        handed.get(to)!.push({ device: c.device, id: c.id });
      } else if (r === "refused") {
        this.stats.refused++;
        await this.settle(c.device, c.id, "refused");
      }
    }
    for (const [to, list] of handed) await this.o.book.sent(list, to);
  }

  /** Runs `f`, logging a failure (a NOTIFY handler has no caller to throw to). */
  async run(f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      this.o.log.warn("command dispatch failed", { error: e instanceof Error ? e.message : String(e) });
    }
  }
}
