// The sesame web console: sign in with an admin token (kept in this tab's sessionStorage), then the fleet,
// one device, the gateways and provisioning, kept live by the admin API's event stream. Plain ES modules,
// nothing to build; data only ever reaches the page as text (dom.js).
import { deviceActions, drawProvision } from "./actions.js";
import { api, ApiError, follow, token } from "./api.js";
import { $, fill, h } from "./dom.js";
import { drawDevice, drawFleet, drawGateways, tickAgo } from "./views.js";

const SECTIONS = ["signin", "fleet", "device", "gateways", "provision"];
const READINGS_KEPT = 10;

const PAGE = 100;

// fleet: the rows of the page shown (`page`: the search and the first row asked for); summary and total: the
// whole fleet in numbers, and how many rows match the search; from: the first row the server sent.
const state = {
  who: null, fleet: new Map(), summary: null, total: 0, from: 0, page: { q: "", from: 0, size: PAGE },
  gateways: [], queues: {}, device: null, view: "fleet", deviceId: null, stop: null, streamFor: undefined,
};

const may = (action) => state.who !== null && (state.who.actions === "all" || state.who.actions.includes(action));

function show(section) {
  for (const s of SECTIONS) $(s).hidden = s !== section;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("here", a.id === `nav-${section}`);
}

function setLive(s) {
  const el = $("live");
  el.hidden = false;
  el.className = `live ${s === "live" ? "on" : "off"}`;
  el.textContent = s === "live" ? "live" : s === "denied" ? "signed out" : "reconnecting…";
  if (s === "denied") signOut("The token was refused: sign in again.");
}

// ---- the event stream ----

const handlers = {
  fleet(d) {
    state.fleet = new Map(d.devices.map((r) => [r.id, r]));
    state.summary = d.summary;
    state.total = d.total;
    state.from = d.from;
    state.gateways = d.gateways;
    state.queues = d.queues;
    redraw();
  },
  devices(d) {
    for (const r of d.devices) if (state.fleet.has(r.id)) state.fleet.set(r.id, r);
    if (state.view === "fleet") drawFleetView();
    if (state.device !== null) {
      const mine = d.devices.find((r) => r.id === state.deviceId);
      if (mine !== undefined) {
        state.device.device = mine;
        if (state.view === "device") drawDevice(state, actionsFor);
      }
    }
  },
  summary(d) {
    state.summary = d.summary;
    state.total = d.total;
    if (state.view === "fleet") drawFleetView();
  },
  gateways(d) {
    state.gateways = d.gateways;
    state.queues = d.queues;
    if (state.view === "gateways") drawGateways(state);
    if (state.view === "fleet") drawFleetView();
  },
  device(d) {
    if (d.device.id !== state.deviceId) return;
    state.device = d;
    if (state.view === "device") drawDevice(state, actionsFor);
  },
  reading(x) {
    if (state.device === null || x.device !== state.deviceId) return;
    state.device.readings = [x, ...state.device.readings].slice(0, READINGS_KEPT);
    state.device.missing = x.missing;
    drawDevice(state, actionsFor);
  },
  command(c) {
    if (state.device === null || c.device !== state.deviceId) return;
    const list = state.device.commands;
    const i = c.id === null ? -1 : list.findIndex((x) => x.id === c.id);
    if (i >= 0) list[i] = c;
    else list.unshift(c);
    drawDevice(state, actionsFor);
  },
};

/** One stream at a time: the fleet's page, or that and one device's events. */
function stream(device) {
  const q = new URLSearchParams();
  if (device !== undefined) q.set("device", device);
  if (state.page.q !== "") q.set("q", state.page.q);
  q.set("from", String(state.page.from));
  q.set("size", String(state.page.size));
  const path = `/v1/events?${q}`;
  if (state.stop !== null && state.streamFor === path) return;
  state.stop?.();
  state.streamFor = path;
  state.stop = follow(path, handlers, setLive);
}

/** Another page of the fleet, or a search: the stream is opened again for it. */
function turnPage(change) {
  state.page = { ...state.page, ...change };
  stream(state.view === "device" ? state.deviceId : undefined);
}

const drawFleetView = () => drawFleet(state, openDevice, turnPage);

// ---- views ----

const actionsFor = (r) => deviceActions(r, () => void loadDevice(r.id), may);

async function loadDevice(id) {
  try {
    state.device = await api(`/v1/fleet/devices/${encodeURIComponent(id)}`);
  } catch (e) {
    fill($("device"), h("p", { class: "error" }, e.message), h("p", {}, h("a", { href: "#/fleet" }, "← Fleet")));
    return;
  }
  if (state.view === "device" && state.deviceId === id) drawDevice(state, actionsFor);
}

function openDevice(id) {
  location.hash = `#/device/${id}`;
}

function redraw() {
  if (state.view === "fleet") drawFleetView();
  else if (state.view === "gateways") drawGateways(state);
  else if (state.view === "device") drawDevice(state, actionsFor);
}

async function route() {
  if (state.who === null) return;
  const m = /^#\/(fleet|gateways|provision|device\/([0-9a-f]{8,64}))$/.exec(location.hash);
  const view = m === null ? "fleet" : m[2] !== undefined ? "device" : m[1];
  state.view = view;
  show(view);
  if (view === "device") {
    if (state.deviceId !== m[2]) {
      state.deviceId = m[2];
      state.device = null;
      drawDevice(state, actionsFor);
    }
    stream(state.deviceId);
    await loadDevice(state.deviceId);
    return;
  }
  state.deviceId = null;
  state.device = null;
  stream(undefined);
  if (view === "provision") await drawProvision((id) => openDevice(id)).catch((e) => fill($("provision"), h("p", { class: "error" }, e.message)));
  else redraw();
}

// ---- signing in and out ----

async function signIn(t) {
  const who = await api("/v1/whoami", { bearer: t });
  token.set(t);
  state.who = who;
  $("who").textContent = `signed in as ${who.actor}`;
  $("nav").hidden = false;
  $("signout").hidden = false;
  $("nav-provision").hidden = !may("device.provision");
  await route();
}

function signOut(message = "") {
  state.stop?.();
  state.stop = null;
  token.clear();
  state.who = null;
  state.fleet = new Map();
  state.summary = null;
  state.page = { q: "", from: 0, size: PAGE };
  for (const s of ["fleet", "device", "gateways", "provision"]) fill($(s));
  $("who").textContent = "";
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("live").hidden = true;
  $("signin-error").textContent = message;
  show("signin");
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("token");
  $("signin-error").textContent = "";
  try {
    await signIn(input.value.trim());
    input.value = "";
  } catch (err) {
    $("signin-error").textContent = err instanceof ApiError && err.status === 401 ? "That token was not accepted." : err.message;
  }
});
$("signout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", () => void route());
setInterval(tickAgo, 1000);

const saved = token.get();
if (saved === null) show("signin");
else signIn(saved).catch(() => signOut("Sign in again."));
