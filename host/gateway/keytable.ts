// The device keys a handshake responder needs, in memory, because handshake lookups are synchronous: psk
// key stores by device id (evolved in place by the responder as sessions confirm) and dh public keys by kid.
// The controller fills it from its registry; a terminate-mode gateway from the controller's KEYS grants.
// Grants travel as text: "mode=psk;current=<hex>;previous=<hex>" or "mode=dh;kid=<hex>;public=<hex>".
import type { PskKeys, PskMatch } from "../../firmware/handshake/psk";
import { pskPid } from "../../firmware/handshake/psk";
import type { EndpointConfig } from "../../firmware/session/endpoint";
import type { SaPolicy } from "../../firmware/session/sa";
import type { KeyPair } from "../../firmware/crypto/provider";
import { hostProvider } from "../crypto/provider";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

type PskEntry = { keys: PskKeys; pids: [string, string | undefined]; saved: string };

export class KeyTable {
  private readonly psk = new Map<string, PskEntry>();
  private readonly dh = new Map<string, { device: string; publicKey: Uint8Array }>();

  setPsk(device: string, keys: PskKeys): void {
    const e: PskEntry = { keys, pids: ["", undefined], saved: "" };
    this.refreshPids(e);
    e.saved = this.evolvedText(e);
    this.psk.set(device, e);
  }

  setDh(device: string, kid: string, publicKey: Uint8Array): void {
    this.dh.set(kid.toLowerCase(), { device, publicKey });
  }

  /** Forgets a device (revoked, or its keys rotated: a new grant follows). */
  remove(device: string): void {
    this.psk.delete(device);
    for (const [kid, v] of this.dh) if (v.device === device) this.dh.delete(kid);
  }

  has(device: string): boolean {
    return this.psk.has(device) || [...this.dh.values()].some((v) => v.device === device);
  }

  get size(): number {
    return this.psk.size + this.dh.size;
  }

  /** The grant text for a device, or "" if it has no keys here. */
  grant(device: string): string {
    const p = this.psk.get(device);
    if (p) return `mode=psk;current=${hex(p.keys.current)}${p.keys.previous ? `;previous=${hex(p.keys.previous)}` : ""}`;
    for (const [kid, v] of this.dh) if (v.device === device) return `mode=dh;kid=${kid};public=${hex(v.publicKey)}`;
    return "";
  }

  /** Applies a grant (an empty one withdraws the device). Returns an error message, or "". */
  applyGrant(device: string, text: string): string {
    this.remove(device);
    if (text === "") return "";
    const f = Object.fromEntries(text.split(";").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    const bytes = (k: string) => (f[k] && /^([0-9a-f]{2})+$/.test(f[k]) ? Uint8Array.from(Buffer.from(f[k], "hex")) : undefined);
    if (f.mode === "psk" && bytes("current")) {
      this.setPsk(device, { current: bytes("current")!, previous: bytes("previous") });
      return "";
    }
    if (f.mode === "dh" && bytes("public") && f.kid) {
      this.setDh(device, f.kid, bytes("public")!);
      return "";
    }
    return `bad key grant for ${device}`;
  }

  /** psk devices whose keys evolved since the last call, with their keys as "current=..;previous=..". */
  takeEvolved(): { device: string; text: string; keys: PskKeys }[] {
    const out: { device: string; text: string; keys: PskKeys }[] = [];
    for (const [device, e] of this.psk) {
      const t = this.evolvedText(e);
      if (t === e.saved) continue;
      e.saved = t;
      this.refreshPids(e);
      out.push({ device, text: t, keys: e.keys });
    }
    return out;
  }

  /** Applies a KEYS_EVOLVED text from a gateway to the device's store. */
  applyEvolved(device: string, text: string): boolean {
    const e = this.psk.get(device);
    const m = /^current=([0-9a-f]{64})(?:;previous=([0-9a-f]{64}))?$/.exec(text);
    if (!e || !m) return false;
    e.keys.current = Uint8Array.from(Buffer.from(m[1], "hex"));
    e.keys.previous = m[2] ? Uint8Array.from(Buffer.from(m[2], "hex")) : undefined;
    e.saved = this.evolvedText(e);
    this.refreshPids(e);
    return true;
  }

  /** The name a device's sessions carry as their peer: its kid (dh) or its id (psk). */
  peerOf(device: string): string {
    for (const [kid, v] of this.dh) if (v.device === device) return kid;
    return device;
  }

  /** The device a dh kid belongs to (handshake peers are named by kid), or the name itself. */
  deviceOfPeer(peer: string): string {
    return this.dh.get(peer)?.device ?? peer;
  }

  findPsk(pid: Uint8Array): PskMatch | undefined {
    const want = hex(pid);
    for (const [device, e] of this.psk) {
      if (this.evolvedText(e) !== e.saved) this.refreshPids(e);
      if (e.pids[0] === want) return { device: Buffer.from(device, "hex"), key: e.keys.current };
      if (e.pids[1] === want && e.keys.previous) return { device: Buffer.from(device, "hex"), key: e.keys.previous };
    }
    return undefined;
  }

  lookupKid(kid: Uint8Array): Uint8Array | undefined {
    return this.dh.get(hex(kid))?.publicKey;
  }

  pskStore(device: Uint8Array): PskKeys | undefined {
    return this.psk.get(hex(device))?.keys;
  }

  /** Responder configurations over this table, for host/gateway/devices.ts. */
  responders(me: KeyPair, policy: SaPolicy, retryMs = 30_000): (mode: "dh" | "psk") => EndpointConfig {
    const base = { initiator: false, responderFirst: false, p: hostProvider, policy, sliceSteps: 0, retryMs, dhI: undefined, pskI: undefined, spiLive: () => false };
    return (mode) => mode === "dh"
      ? { ...base, dh: true, dhR: { p: hostProvider, me, lookup: (kid) => this.lookupKid(kid) }, pskR: undefined, pskStore: undefined }
      : { ...base, dh: false, dhR: undefined, pskR: { p: hostProvider, lookup: (pid) => this.findPsk(pid) }, pskStore: (d) => this.pskStore(d) };
  }

  private evolvedText(e: PskEntry): string {
    return `current=${hex(e.keys.current)}${e.keys.previous ? `;previous=${hex(e.keys.previous)}` : ""}`;
  }

  private refreshPids(e: PskEntry): void {
    e.pids = [hex(pskPid(hostProvider, e.keys.current)), e.keys.previous ? hex(pskPid(hostProvider, e.keys.previous)) : undefined];
  }
}
