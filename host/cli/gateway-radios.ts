// The gateway's real radios, as `sesame gateway` options: a BLE central (--ble) and a LoRa AT modem
// (--lora-port and its radio settings). Options are checked before anything starts; a radio the machine
// lacks is said once and the gateway carries on with the links it has.
import type { Gateway } from "../gateway/gateway";
import { BleCentral } from "../gateway/links/ble-central";
import { LinkDispatcher } from "../gateway/links/dispatch";
import { LoraModemLink } from "../gateway/links/lora-modem";
import { P2P_DEFAULTS, P2pSettings } from "../gateway/links/lora-p2p";
import type { RadioSignal } from "../gateway/radio-signal";
import type { SimLinkServer } from "../gateway/simlink";
import type { Logger } from "../telemetry/log";
import { intIn, oneOf, OptionSpec, UsageError, Values } from "./options";

const D = P2P_DEFAULTS;
const CODING_RATES = ["4/5", "4/6", "4/7", "4/8"] as const;

export const RADIO_OPTIONS: Record<string, OptionSpec> = {
  ble: { type: "boolean", help: "use the machine's BLE radio as a central (needs @stoprocent/noble and a powered-on adapter)" },
  "lora-port": { type: "string", help: "serial port of a RAK3172-class LoRa modem running RUI3 AT firmware, e.g. /dev/ttyUSB0" },
  "lora-baud": { type: "string", help: "the modem's UART speed", default: "115200" },
  "lora-freq": { type: "string", help: "LoRa P2P frequency in Hz (the devices' own)", default: String(D.freqHz) },
  "lora-sf": { type: "string", help: "spreading factor 7..12 (sets the largest frame: 51 B at 12..10, 115 B at 9, 222 B at 8..7)", default: String(D.sf) },
  "lora-bw": { type: "string", help: "bandwidth in kHz: 125, 250 or 500", default: String(D.bwKHz) },
  "lora-cr": { type: "string", help: "coding rate: 4/5, 4/6, 4/7 or 4/8", default: CODING_RATES[D.cr] },
  "lora-preamble": { type: "string", help: "preamble length in symbols", default: String(D.preamble) },
  "lora-power": { type: "string", help: "transmit power in dBm, 5..22 (keep within your region's limit)", default: String(D.powerDbm) },
  "lora-duty": { type: "string", help: "downlink duty cycle, percent of each hour on air, 0.1..100 (EU868 869.4-869.65 MHz allows 10)", default: "10" },
};

export type RadioSettings = { ble: boolean; lora: { path: string; baud: number; p2p: P2pSettings; dutyPermille: number } | undefined };

/** The radio options, checked: a wrong one says which and what it should be. */
export function radioSettings(v: Values): RadioSettings {
  const path = v["lora-port"];
  if (typeof path !== "string" || path === "") return { ble: v.ble === true, lora: undefined };
  const p2p: P2pSettings = {
    freqHz: intIn(v, "lora-freq", 150_000_000, 960_000_000, "a frequency in Hz (868100000 for 868.1 MHz)"),
    sf: intIn(v, "lora-sf", 7, 12, "a spreading factor"),
    bwKHz: Number(oneOf(v, "lora-bw", ["125", "250", "500"] as const)),
    cr: CODING_RATES.indexOf(oneOf(v, "lora-cr", CODING_RATES)),
    preamble: intIn(v, "lora-preamble", 2, 65535, "a preamble length in symbols"),
    powerDbm: intIn(v, "lora-power", 5, 22, "a transmit power in dBm"),
  };
  const duty = Number(v["lora-duty"]);
  if (!Number.isFinite(duty) || duty < 0.1 || duty > 100) throw new UsageError(`--lora-duty ${JSON.stringify(v["lora-duty"])}: must be a percentage from 0.1 to 100 (10 is the EU868 869.4-869.65 MHz band's limit)`);
  const baud = intIn(v, "lora-baud", 1200, 921_600, "a baud rate (RUI3 modems start at 115200)");
  return { ble: v.ble === true, lora: { path, baud, p2p, dutyPermille: Math.round(duty * 10) } };
}

/**
 * Routes the gateway's output (each packet to the link owning its name) and starts the radios asked for in
 * the background: a modem's set-up or an adapter that never powers on must not hold up the gateway.
 * The simulator's link also names its packets "lora" and "ble:<board>": a real modem, once up, takes
 * "lora" (the simulator's LoRa boards then go unanswered: the two are not meant to run together), and a
 * connected BLE board its "ble:<address>" (a MAC address, never a simulated board's name); the simulator
 * takes every other name.
 */
export function startRadios(s: RadioSettings, gateway: Gateway, sim: SimLinkServer | undefined, log: Logger): LinkDispatcher {
  let modemUp = false;
  const out = new LinkDispatcher(sim && { owns: (l) => !(modemUp && l === "lora"), send: (p) => sim.send(p) });
  gateway.on("output", () => out.dispatch(gateway.takeOutput()));
  const sink = { input: (l: string, b: Uint8Array, signal?: RadioSignal) => gateway.input(l, b, signal), connected: (l: string) => gateway.connected(l) };
  if (s.lora) {
    const modem = new LoraModemLink({ ...s.lora, log }, sink);
    void modem.open().then((up) => {
      if ((modemUp = up)) out.add(modem);
    });
  } else log.info("LoRa: no modem given (--lora-port); carrying on without it");
  if (s.ble) {
    const central = new BleCentral({ log }, sink);
    void central.start().then((up) => up && out.add(central));
  } else log.info("BLE: not asked for (--ble); carrying on without it");
  return out;
}
