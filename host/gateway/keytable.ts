// The device keys a handshake responder needs, in memory, because handshake lookups are synchronous: psk
// key stores by device id (evolved in place by the responder as sessions confirm) and dh public keys by kid.
// The controller fills it from its registry; a terminate-mode gateway from the controller's KEYS grants.
// Grants travel as text: "mode=psk;current=<hex>;previous=<hex>" or "mode=dh;kid=<hex>;public=<hex>", and
// from the controller ";rotated=<ms>": when the device's keys were last rotated (0: never). A grant that
// rotates keys comes after a withdrawal that ends the device's sessions; a gateway away at the time gets the
// new keys alone, and tells the rotation by that stamp (rotatedAway).
//
// A psk hello names its device only by a pseudonym (pid) of the key it used, so the table keeps an index
// from pid to device for both keys of every device: a hello, junk or genuine, costs one map lookup whatever
// the fleet's size. The index follows every change of keys: grants and KEYS_EVOLVED texts re-index at once;
// a responder evolving a store in place (pskConfirm, through the store the responders' configuration hands
// out) marks the device, and its pids are recomputed at the next lookup, so a lookup costs at most the
// confirmations since the one before it.
import type { PskKeys, PskMatch } from "../../firmware/handshake/psk";
import { pskPid } from "../../firmware/handshake/psk";
import type { EndpointConfig } from "../../firmware/session/endpoint";
import type { SaPolicy } from "../../firmware/session/sa";
import type { KeyPair } from "../../firmware/crypto/provider";
import { hostProvider } from "../crypto/provider";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** A pid (4 bytes) as a map key. */
const pidKey = (pid: Uint8Array) => pid.length === 4 ? ((pid[0] << 24) | (pid[1] << 16) | (pid[2] << 8) | pid[3]) >>> 0 : -1;

/** `pids`: the index keys this entry is filed under (of its current and previous key), as last indexed. */
type PskEntry = { keys: PskKeys; pids: number[]; saved: string; rotated: number | undefined };

export class KeyTable {
  private readonly psk = new Map<string, PskEntry>();
  /** pid -> the devices whose current or previous key shows it: one, unless two 4-byte pids collide. */
  private readonly byPid = new Map<number, string[]>();
  /** Devices whose store a responder evolved in place: to re-index before the next lookup, and to report. */
  private readonly evolvedInPlace = new Set<string>();
  private readonly unreported = new Set<string>();
  private readonly dh = new Map<string, { device: string; publicKey: Uint8Array; rotated: number | undefined }>();
  /**
   * device -> its kid: a grant, a withdrawal or a peer name for one device is one lookup. Walking `dh` for them
   * made a gateway's connection to a controller of 50,000 dh devices cost the controller 17 s (its grant of
   * every device) and the gateway as much again (each grant it applies withdraws the device first).
   */
  private readonly kidOf = new Map<string, string>();

  setPsk(device: string, keys: PskKeys, rotated?: number): void {
    this.removePsk(device);
    const e: PskEntry = { keys, pids: [], saved: evolvedText(keys), rotated };
    this.psk.set(device, e);
    this.index(device, e);
  }

  /** A dh device's key under its kid: its only one (a kid another device held moves to this one). */
  setDh(device: string, kid: string, publicKey: Uint8Array, rotated?: number): void {
    const k = kid.toLowerCase();
    this.removeDh(device);
    const holder = this.dh.get(k)?.device;
    if (holder !== undefined) this.kidOf.delete(holder);
    this.dh.set(k, { device, publicKey, rotated });
    this.kidOf.set(device, k);
  }

  /** Forgets a device (revoked, or its keys rotated: a new grant follows). */
  remove(device: string): void {
    this.removePsk(device);
    this.removeDh(device);
  }

  /** Every device with keys here. */
  devices(): string[] {
    return [...this.psk.keys(), ...this.kidOf.keys()];
  }

  has(device: string): boolean {
    return this.psk.has(device) || this.kidOf.has(device);
  }

  get size(): number {
    return this.psk.size + this.dh.size;
  }

  /** The grant text for a device, or "" if it has no keys here. */
  grant(device: string): string {
    const p = this.psk.get(device);
    if (p) return `mode=psk;${evolvedText(p.keys)}${rotatedText(p.rotated)}`;
    const kid = this.kidOf.get(device);
    if (kid === undefined) return "";
    const d = this.dh.get(kid)!;
    return `mode=dh;kid=${kid};public=${hex(d.publicKey)}${rotatedText(d.rotated)}`;
  }

  /** Whether `grant` carries keys rotated since the ones held for `device` (stamps differ): its sessions on those must end. */
  rotatedAway(device: string, grant: string): boolean {
    const kid = this.kidOf.get(device);
    const held = this.psk.get(device)?.rotated ?? (kid === undefined ? undefined : this.dh.get(kid)!.rotated);
    const stamp = held === undefined ? undefined : stampOf(grant);
    return stamp !== undefined && stamp !== held;
  }

  /** Applies a grant (an empty one withdraws the device). Returns an error message, or "". */
  applyGrant(device: string, text: string): string {
    this.remove(device);
    if (text === "") return "";
    const f = Object.fromEntries(text.split(";").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    const bytes = (k: string) => (f[k] && /^([0-9a-f]{2})+$/.test(f[k]) ? Uint8Array.from(Buffer.from(f[k], "hex")) : undefined);
    const rotated = stampOf(text);
    if (f.mode === "psk" && bytes("current")) {
      this.setPsk(device, { current: bytes("current")!, previous: bytes("previous") }, rotated);
      return "";
    }
    if (f.mode === "dh" && bytes("public") && f.kid) {
      this.setDh(device, f.kid, bytes("public")!, rotated);
      return "";
    }
    return `bad key grant for ${device}`;
  }

  /** psk devices whose keys evolved (here, in place) since the last call, with their keys as "current=..;previous=..". */
  takeEvolved(): { device: string; text: string; keys: PskKeys }[] {
    const out: { device: string; text: string; keys: PskKeys }[] = [];
    for (const device of this.unreported) {
      const e = this.psk.get(device);
      if (e === undefined) continue;
      const t = evolvedText(e.keys);
      if (t === e.saved) continue;
      e.saved = t;
      out.push({ device, text: t, keys: e.keys });
    }
    this.unreported.clear();
    return out;
  }

  /** Applies a KEYS_EVOLVED text from a gateway to the device's store. */
  applyEvolved(device: string, text: string): boolean {
    const e = this.psk.get(device);
    const m = /^current=([0-9a-f]{64})(?:;previous=([0-9a-f]{64}))?$/.exec(text);
    if (!e || !m) return false;
    this.unindex(device, e);
    e.keys.current = Uint8Array.from(Buffer.from(m[1], "hex"));
    e.keys.previous = m[2] ? Uint8Array.from(Buffer.from(m[2], "hex")) : undefined;
    e.saved = evolvedText(e.keys);
    this.index(device, e);
    return true;
  }

  /** The name a device's sessions carry as their peer: its kid (dh) or its id (psk). */
  peerOf(device: string): string {
    return this.kidOf.get(device) ?? device;
  }

  /** The device a dh kid belongs to (handshake peers are named by kid), or the name itself. */
  deviceOfPeer(peer: string): string {
    return this.dh.get(peer)?.device ?? peer;
  }

  /** The device whose current or previous key shows `pid`, and that key: one index lookup, whatever the fleet. */
  findPsk(pid: Uint8Array): PskMatch | undefined {
    this.reindexEvolved();
    const k = pidKey(pid);
    const devices = this.byPid.get(k);
    if (devices === undefined) return undefined;
    for (const device of devices) {
      const e = this.psk.get(device)!;
      if (e.pids[0] === k) return { device: Buffer.from(device, "hex"), key: e.keys.current };
      if (e.pids[1] === k && e.keys.previous) return { device: Buffer.from(device, "hex"), key: e.keys.previous };
    }
    return undefined;
  }

  lookupKid(kid: Uint8Array): Uint8Array | undefined {
    return this.dh.get(hex(kid))?.publicKey;
  }

  /** A psk device's key store, to read (a responder evolving it goes through responders()). */
  pskStore(device: Uint8Array): PskKeys | undefined {
    return this.psk.get(hex(device))?.keys;
  }

  /** Responder configurations over this table, for host/gateway/devices.ts: the same two objects for every endpoint. */
  responders(me: KeyPair, policy: SaPolicy, retryMs = 30_000): (mode: "dh" | "psk") => EndpointConfig {
    const base = { initiator: false, responderFirst: false, p: hostProvider, policy, sliceSteps: 0, retryMs, dhI: undefined, pskI: undefined, spiLive: () => false };
    const dh: EndpointConfig = { ...base, dh: true, dhR: { p: hostProvider, me, lookup: (kid) => this.lookupKid(kid) }, pskR: undefined, pskStore: undefined };
    const psk: EndpointConfig = { ...base, dh: false, dhR: undefined, pskR: { p: hostProvider, lookup: (pid) => this.findPsk(pid) }, pskStore: (d) => this.storeToEvolve(d) };
    return (mode) => (mode === "dh" ? dh : psk);
  }

  /** The store a responder is about to evolve (endpoint.ts confirm -> pskConfirm, at once): its pids change. */
  private storeToEvolve(device: Uint8Array): PskKeys | undefined {
    const name = hex(device);
    const e = this.psk.get(name);
    if (e === undefined) return undefined;
    this.evolvedInPlace.add(name);
    this.unreported.add(name);
    return e.keys;
  }

  private reindexEvolved(): void {
    if (this.evolvedInPlace.size === 0) return;
    for (const device of this.evolvedInPlace) {
      const e = this.psk.get(device);
      if (e === undefined) continue;
      this.unindex(device, e);
      this.index(device, e);
    }
    this.evolvedInPlace.clear();
  }

  private removeDh(device: string): void {
    const kid = this.kidOf.get(device);
    if (kid === undefined) return;
    this.dh.delete(kid);
    this.kidOf.delete(device);
  }

  private removePsk(device: string): void {
    const e = this.psk.get(device);
    if (e === undefined) return;
    this.unindex(device, e);
    this.psk.delete(device);
  }

  private index(device: string, e: PskEntry): void {
    e.pids = [pidKey(pskPid(hostProvider, e.keys.current))];
    if (e.keys.previous) e.pids.push(pidKey(pskPid(hostProvider, e.keys.previous)));
    for (const k of e.pids) {
      const devices = this.byPid.get(k);
      if (devices === undefined) this.byPid.set(k, [device]);
      else if (!devices.includes(device)) devices.push(device);
    }
  }

  private unindex(device: string, e: PskEntry): void {
    for (const k of e.pids) {
      const devices = this.byPid.get(k);
      if (devices === undefined) continue;
      const rest = devices.filter((d) => d !== device);
      if (rest.length === 0) this.byPid.delete(k);
      else this.byPid.set(k, rest);
    }
    e.pids = [];
  }
}

const rotatedText = (rotated: number | undefined) => (rotated === undefined ? "" : `;rotated=${rotated}`);

/** A grant's rotation stamp (";rotated=<ms>"), or undefined when it has none or a malformed one. */
function stampOf(grant: string): number | undefined {
  const m = /(?:^|;)rotated=(\d{1,15})(?:;|$)/.exec(grant);
  return m === null ? undefined : Number(m[1]);
}

function evolvedText(keys: PskKeys): string {
  return `current=${hex(keys.current)}${keys.previous ? `;previous=${hex(keys.previous)}` : ""}`;
}
