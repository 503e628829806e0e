// Endpoint configurations from plain strings: what provisioning hands a board to flash next to its bundle,
// and what the simulator and the interop tests pass across a sandbox boundary. The format is
// "key=value;key=value" (hex for keys, decimal for numbers): it needs no JSON, which Lua lacks.
import { Bytes } from "#target";
import { fromHex, toHex } from "../bytes";
import { CryptoProvider } from "../crypto/provider";
import { pskPid, PskKeys, PskMatch } from "../handshake/psk";
import { Endpoint, epNew } from "../session/endpoint";
import { SaPolicy } from "../session/sa";
import { parseDecimal } from "../session/seqstore";

export type Fields = { [key: string]: string };

export function parseFields(s: string): Fields {
  const out: Fields = {};
  const parts = s.split(";");
  for (let i = 0; i < parts.length; i++) {
    const eq = parts[i].indexOf("=");
    if (eq > 0) out[parts[i].substring(0, eq)] = parts[i].substring(eq + 1);
  }
  return out;
}

function bytesOf(f: Fields, key: string): Bytes {
  const v = f[key];
  const b = v === undefined ? undefined : fromHex(v);
  if (b === undefined) throw "config: " + key + " must be hex";
  return b;
}

function numberOf(f: Fields, key: string, dflt: number): number {
  const v = f[key];
  if (v === undefined) return dflt;
  const n = parseDecimal(v);
  if (n < 0) throw "config: " + key + " must be a decimal number";
  return n;
}

/**
 * A device (initiator). dh: kid, secret (its static X25519 key), gateway (the pinned public key);
 * psk: id, psk. Both: mode=dh|psk, order=R|I, slice (ladder steps per poll, 0 = at once), retry (ms).
 */
export function deviceEndpoint(p: CryptoProvider, policy: SaPolicy, conf: string, spiLive: (spi: number) => boolean): Endpoint {
  const f = parseFields(conf);
  const dh = f["mode"] === "dh";
  const secret = dh ? bytesOf(f, "secret") : undefined;
  return epNew({
    initiator: true, dh: dh, responderFirst: f["order"] !== "I", p: p, policy: policy,
    sliceSteps: numberOf(f, "slice", 0), retryMs: numberOf(f, "retry", 5000),
    dhI: dh ? { p: p, kid: bytesOf(f, "kid"), me: { s: secret!, S: p.x25519(secret!, base()) }, peer: bytesOf(f, "gateway") } : undefined,
    dhR: undefined,
    pskI: dh ? undefined : { p: p, id: bytesOf(f, "id"), keys: { current: bytesOf(f, "psk"), previous: undefined } },
    pskR: undefined, pskStore: undefined, spiLive: spiLive,
  });
}

function base(): Bytes {
  const b = fromHex("0900000000000000000000000000000000000000000000000000000000000000");
  return b!;
}

/**
 * A gateway (responder) for a table of devices: mode, order, secret (dh: its static key) and
 * devices = "kid:public,kid:public" (dh) or "id:psk,id:psk" (psk).
 */
export function gatewayEndpoint(p: CryptoProvider, policy: SaPolicy, conf: string, spiLive: (spi: number) => boolean): Endpoint {
  const f = parseFields(conf);
  const dh = f["mode"] === "dh";
  const ids: string[] = [];
  const keys: Bytes[] = [];
  const stores: PskKeys[] = [];
  const list = (f["devices"] === undefined ? "" : f["devices"]).split(",");
  for (let i = 0; i < list.length; i++) {
    const kv = list[i].split(":");
    if (kv.length !== 2) continue;
    const k = fromHex(kv[1]);
    if (k === undefined) throw "config: devices must be id:hex pairs";
    ids.push(kv[0]);
    keys.push(k);
    stores.push({ current: k, previous: undefined });
  }
  const secret = dh ? bytesOf(f, "secret") : undefined;
  const me = dh ? { s: secret!, S: p.x25519(secret!, base()) } : undefined;
  const findPsk = (pid: Bytes): PskMatch | undefined => {
    const want = toHex(pid);
    for (let i = 0; i < stores.length; i++) {
      const cur = stores[i].current;
      const prev = stores[i].previous;
      if (toHex(pskPid(p, cur)) === want) return { device: fromHex(ids[i])!, key: cur };
      if (prev !== undefined && toHex(pskPid(p, prev)) === want) return { device: fromHex(ids[i])!, key: prev };
    }
    return undefined;
  };
  return epNew({
    initiator: false, dh: dh, responderFirst: f["order"] !== "I", p: p, policy: policy,
    sliceSteps: 0, retryMs: numberOf(f, "retry", 5000), dhI: undefined,
    dhR: dh ? { p: p, me: me!, lookup: (kid: Bytes) => { const i = ids.indexOf(toHex(kid)); return i < 0 ? undefined : keys[i]; } } : undefined,
    pskI: undefined,
    pskR: dh ? undefined : { p: p, lookup: findPsk },
    pskStore: (device: Bytes) => { const i = ids.indexOf(toHex(device)); return i < 0 ? undefined : stores[i]; },
    spiLive: spiLive,
  });
}
