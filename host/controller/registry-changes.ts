// Following the registry without reading all of it each time: a whole read now and then, and in between only
// the rows changed since the last read (devices.changed_at, migrations/005), revoked ones too. A change
// becomes visible when its transaction commits, which can be after its time stamp, so each changed-rows read
// starts LOOKBACK_MS before the previous one began. Devices are never deleted, only revoked, so a reader
// that applies each row it gets holds the whole registry. The key grants (./grants.ts) and the console's
// fleet view (./live/feed.ts) follow it so.
import type { DeviceRecord, Registry } from "./registry";

/** How far before its last read a changed-rows read starts: longer than any transaction that changes a device. */
export const LOOKBACK_MS = 60_000;
/** A whole read at least this often, whatever the changed-rows reads found. */
export const FULL_EVERY_MS = 10 * 60_000;

export class RegistryChanges {
  /** Where the next changed-rows read starts (the database's clock, ms), and when the last whole read was (now()). */
  private since: number | undefined;
  private wholeAt = -Infinity;

  constructor(private readonly registry: Registry, private readonly includeRevoked: boolean, private readonly now: () => number = Date.now) {}

  /**
   * Hands `apply` every device (whole: true; revoked ones only if includeRevoked) or the rows changed since the
   * last read. The next read starts from this one only once `apply` is done: rows it failed on come again.
   */
  async read(apply: (rows: DeviceRecord[], whole: boolean) => void | Promise<void>, forceWhole = false): Promise<void> {
    const at = await this.registry.clock();
    const whole = forceWhole || this.since === undefined || this.now() - this.wholeAt >= FULL_EVERY_MS;
    await apply(whole ? await this.registry.list({ includeRevoked: this.includeRevoked }) : await this.registry.changedSince(this.since!), whole);
    if (whole) this.wholeAt = this.now();
    this.since = at - LOOKBACK_MS;
  }
}
