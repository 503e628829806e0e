// The fleet in numbers, for the console's headline (devices, revoked, online, readings a minute, open
// sessions): kept as the live feed makes rows, each device's part as one number and their sum, so a tick's
// numbers cost nothing however large the fleet (counting them every tick took 19-31 ms at 100,000 devices).
// The feed finds every part again when it has not kept them (no tick for a while, a whole registry read).
import type { Principal } from "../principal";

/** The whole fleet a principal sees, in numbers: devices not revoked, and of those online, readings a minute, with a session. */
export type FleetSummary = { devices: number; revoked: number; online: number; perMinute: number; sessions: number };

export const noDevices = (): FleetSummary => ({ devices: 0, revoked: 0, online: 0, perMinute: 0, sessions: 0 });

export class FleetNumbers {
  /** device -> its part: -1 revoked, else readings a minute * 4 + online * 2 + an open session. */
  private readonly parts = new Map<string, number>();
  private readonly sum = noDevices();
  private keptAt = -Infinity;
  private stale = true;

  /** Whether the parts were kept up to `maxAgeMs` before `now`, and nothing since made them stale. */
  current(now: number, maxAgeMs: number): boolean {
    return !this.stale && now - this.keptAt <= maxAgeMs;
  }

  /** The parts were kept up to now (every device's made again, or a tick's worth). */
  kept(now: number): void {
    this.keptAt = now;
    this.stale = false;
  }

  /** Devices came or went (a whole read of the registry): every part must be found again. */
  invalidate(): void {
    this.stale = true;
  }

  /** Forgets every part, before each is found again. */
  clear(): void {
    this.parts.clear();
    Object.assign(this.sum, noDevices());
  }

  set(device: string, revoked: boolean, perMinute: number, online: boolean, session: boolean): void {
    const code = revoked ? -1 : perMinute * 4 + (online ? 2 : 0) + (session ? 1 : 0);
    const old = this.parts.get(device);
    if (old === code) return;
    if (old !== undefined) count(this.sum, old, -1);
    count(this.sum, code, 1);
    this.parts.set(device, code);
  }

  /** What `p` sees: the sum, or for a principal limited to some devices, theirs. */
  of(p: Principal): FleetSummary {
    if (p.devices === "all") return { ...this.sum };
    const s = noDevices();
    for (const id of p.devices) {
      const c = this.parts.get(id);
      if (c !== undefined) count(s, c, 1);
    }
    return s;
  }
}

function count(s: FleetSummary, code: number, k: 1 | -1): void {
  if (code < 0) {
    s.revoked += k;
    return;
  }
  s.devices += k;
  s.perMinute += k * Math.floor(code / 4);
  if (code & 2) s.online += k;
  if (code & 1) s.sessions += k;
}
