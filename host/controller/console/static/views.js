// The console's views: the fleet, one device, the gateways. Each draws from the state app.js keeps up to
// date from the event stream; rows are redrawn one at a time as they change, so the table under a finger
// or a pointer stays put.
import { $, ago, cell, fill, h, short, table, time } from "./dom.js";

const FLEET_HEADERS = ["Name", "Device", "Board", "Mode", "Online", "Last seen", "Link", "RSSI", "Readings/min", "Session", "Commands"];

/**
 * The fleet: the whole of it in numbers (state.summary, from the server), then the page of rows the stream
 * sends (state.fleet, in the registry's order), a search box and the pager. `turn` asks for another page:
 * turn({ q }) or turn({ from }).
 */
export function drawFleet(state, go, turn) {
  const el = $("fleet");
  const s = state.summary;
  const summary = h("p", { class: "summary", id: "fleet-summary" },
    h("span", {}, h("b", { id: "online-count" }, s === null ? "…" : `${s.online}/${s.devices}`), " online"),
    h("span", {}, h("b", {}, s === null ? "…" : String(s.perMinute)), " readings/min"),
    h("span", {}, h("b", {}, String(state.gateways.filter((g) => g.connected).length)), ` of ${state.gateways.length} gateways up`),
    s !== null && s.revoked > 0 ? h("span", {}, h("b", {}, String(s.revoked)), " revoked") : null);
  let tbody = el.querySelector("tbody");
  if (tbody === null) {
    let typing;
    const search = h("input", {
      type: "search", id: "fleet-search", placeholder: "Search names and ids", "aria-label": "Search the fleet by name or id", maxlength: "64",
      on: { input: (e) => { clearTimeout(typing); typing = setTimeout(() => turn({ q: e.target.value.trim(), from: 0 }), 300); } },
    });
    search.value = state.page.q;
    const pager = h("div", { class: "pager" },
      h("button", { type: "button", class: "plain", id: "fleet-prev", on: { click: () => turn({ from: Math.max(0, state.page.from - state.page.size) }) } }, "‹ Previous"),
      h("span", { id: "fleet-range" }),
      h("button", { type: "button", class: "plain", id: "fleet-next", on: { click: () => turn({ from: state.page.from + state.page.size }) } }, "Next ›"));
    fill(el, h("h1", {}, "Fleet"), summary, h("div", { class: "toolbar" }, search, pager), table(FLEET_HEADERS, [], { id: "fleet-table" }),
      h("p", { class: "hint" }, "Live: rows change as readings and sessions come in. Select a device for its sessions, readings and commands."));
    tbody = el.querySelector("tbody");
  } else {
    el.querySelector("#fleet-summary").replaceWith(summary);
  }
  const first = state.fleet.size === 0 ? 0 : state.from + 1;
  $("fleet-range").textContent = state.total === 0 ? (state.page.q === "" ? "no devices" : "none match") : `${first}–${state.from + state.fleet.size} of ${state.total}`;
  $("fleet-prev").disabled = state.from === 0;
  $("fleet-next").disabled = state.from + state.fleet.size >= state.total;
  const held = new Map([...tbody.querySelectorAll("tr[data-id]")].map((tr) => [tr.dataset.id, tr]));
  let i = 0;
  for (const r of state.fleet.values()) {
    const text = JSON.stringify(r);
    let tr = held.get(r.id);
    held.delete(r.id);
    if (tr === undefined || tr.dataset.row !== text) {
      const fresh = fleetRow(r, go);
      fresh.dataset.row = text;
      if (tr !== undefined) tr.replaceWith(fresh);
      tr = fresh;
    }
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] ?? null);
    i++;
  }
  for (const tr of held.values()) tr.remove();
}

function fleetRow(r, go) {
  const cells = [
    r.name === "" ? h("span", { class: "hint" }, "(unnamed)") : r.name,
    h("span", { class: "mono", title: r.id }, short(r.id, 8)),
    r.board, r.mode,
    r.revoked ? "revoked" : h("span", { class: r.online ? "yes" : "no" }, r.online ? "online" : "offline"),
    h("span", { "data-ago": r.lastSeen ?? "" }, ago(r.lastSeen)),
    r.link ?? "",
    signalText(r.signal),
    String(r.perMinute),
    r.session === null ? "none" : h("span", { class: "mono" }, `SPI ${hexSpi(r.session.spi)}`),
    `${r.commands.sent + r.commands.acked + r.commands.lost} sent, ${r.commands.acked} acked` + (r.commands.lost > 0 ? `, ${r.commands.lost} lost` : ""),
  ];
  return h("tr", { "data-id": r.id, class: `link${r.revoked ? " revoked" : ""}`, tabindex: "0", on: { click: () => go(r.id), keydown: (e) => e.key === "Enter" && go(r.id) } },
    cells.map((c, i) => cell(FLEET_HEADERS[i], c)));
}

/** "-67 dBm" (BLE), "-104 dBm, SNR -3.5 dB" (LoRa), or "unknown" (relay mode, or not reported yet). */
export function signalText(s) {
  if (s === null || s === undefined) return h("span", { class: "hint" }, "unknown");
  return h("span", { class: "signal", title: `smoothed ${s.rssiAvg} dBm over ${s.link}, reported ${time(s.at)}` },
    `${s.rssi} dBm` + (s.snr === null ? "" : `, SNR ${s.snr} dB`));
}

export const hexSpi = (spi) => `0x${spi.toString(16).padStart(6, "0")}`;

/** Keeps the "… ago" cells current between updates. */
export function tickAgo() {
  for (const el of document.querySelectorAll("[data-ago]")) el.textContent = ago(el.dataset.ago || null);
}

export function drawGateways(state) {
  const queues = Object.entries(state.queues);
  const own = (g, f) => (g.reported === null ? h("span", { class: "hint" }, "not reported") : f(g.reported));
  fill($("gateways"),
    h("h1", {}, "Gateways"),
    table(["Gateway", "Mode", "Connected", "Queue to it", "Awaiting durable", "Messages from it", "Readings", "Its backbone queue", "Held commands", "Held readings", "Sessions", "Dropped"],
      state.gateways.map((g) => [h("span", { class: "mono" }, g.kid), g.mode, h("span", { class: g.connected ? "yes" : "no" }, g.connected ? "yes" : "no"),
        String(g.queueToGateway), String(g.awaitingDurable), String(g.received), String(g.readings),
        own(g, (r) => `${r.backbone.messages} msgs, ${r.backbone.bytes} B`), own(g, (r) => String(r.commands)), own(g, (r) => String(r.readings)),
        own(g, (r) => String(r.sessions)), own(g, (r) => String(r.dropped))]), { id: "gateways-table" }),
    h("h2", {}, "Devices with the most held at their gateway"),
    table(["Gateway", "Device", "Held commands", "Held readings"], state.gateways.flatMap((g) => (g.reported?.queues ?? []).map((q) =>
      [h("span", { class: "mono" }, short(g.kid)), h("span", { class: "mono" }, q.device), String(q.commands), String(q.readings)])), { id: "gateway-queues-table" }),
    h("h2", {}, "Controller queues"),
    table(["Queue", "Messages waiting"], queues.map(([k, v]) => [k, String(v)])),
    h("p", { class: "hint" }, "Queue to it: backbone messages sent to the gateway and not yet acknowledged. Awaiting durable: its messages this controller holds until MQTT or the database has them. " +
      "The rest is what the gateway reports of itself every few seconds: its backbone queue to the controller (not yet acknowledged), commands held for devices, readings held until durable here, device sessions open, device messages dropped."));
}

/**
 * One device: what it is, its state, its sessions, its last readings and commands, and the actions. The
 * frame (and the actions, with whatever is being typed into them) is drawn once per device; the parts
 * that change are redrawn inside it.
 */
export function drawDevice(state, actions) {
  const d = state.device;
  const el = $("device");
  if (d === null) {
    delete el.dataset.frame;
    return fill(el, h("p", {}, "Loading…"));
  }
  const r = d.device;
  const frame = `${r.id}:${r.revoked}`;
  if (el.dataset.frame !== frame) {
    el.dataset.frame = frame;
    fill(el,
      h("p", {}, h("a", { href: "#/fleet" }, "← Fleet")),
      h("h1", { id: "device-name" }),
      h("dl", { class: "facts", id: "device-facts" }),
      r.revoked ? null : actions(r),
      h("h2", {}, "Sessions"), h("div", { id: "device-sessions" }),
      h("h2", {}, "Readings (live)"), h("p", { class: "missing", id: "missing" }), h("div", { id: "device-readings" }),
      h("h2", {}, "Commands"), h("div", { id: "device-commands" }));
  }
  $("device-name").textContent = r.name === "" ? r.id : r.name;
  fill($("device-facts"),
    fact("Device id", h("span", { class: "mono" }, r.id)), fact("Board", r.board), fact("Mode", r.mode),
    fact("State", r.revoked ? h("span", { class: "no", id: "device-state" }, "revoked") : h("span", { class: r.online ? "yes" : "no", id: "device-state" }, r.online ? "online" : "offline")),
    fact("Last seen", h("span", { "data-ago": r.lastSeen ?? "" }, ago(r.lastSeen))), fact("Gateway", h("span", { class: "mono" }, r.gateway ?? "")),
    fact("Link", r.link ?? ""), fact("Signal", h("span", { id: "device-signal" }, signalText(r.signal))), fact("Readings/min", String(r.perMinute)),
    fact("Key epoch", `generation ${r.generation} (each key rotation or psk evolution moves it on)`));
  fill($("device-sessions"), table(["SPI", "Gateway", "Opened", "Closed", "Reason"], d.sessions.map((s) => [h("span", { class: "mono" }, hexSpi(s.spi)),
    h("span", { class: "mono" }, short(s.gateway)), time(s.openedAt), s.closedAt === null ? h("span", { class: "yes" }, "open") : time(s.closedAt), s.closeReason ?? ""]),
  { id: "sessions-table" }));
  $("missing").textContent = d.missing.length === 0 ? "" : `Reading ids never received: ${d.missing.join(", ")}`;
  fill($("device-readings"), table(["Id", "At", "Bytes", "Payload (hex)", "Gateway"], d.readings.map((x) => [String(x.id), time(x.at), String(x.bytes),
    h("span", { class: "mono" }, x.payload), h("span", { class: "mono" }, short(x.gateway))]), { id: "readings-table" }));
  fill($("device-commands"), table(["Id", "At", "Bytes", "State"], d.commands.map((c) => [c.id === null ? "" : String(c.id), time(c.at), String(c.bytes),
    c.reason ? `${c.state}: ${c.reason}` : c.state]), { id: "commands-table" }));
}

function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, value)];
}
