// Building the page without markup: every piece of data goes in as a text node (textContent), so a device
// named "<script>" shows as those characters and never runs. Nothing here parses strings as markup.

/**
 * An element: h("td", { class: "num", "data-label": "RSSI" }, "12", child). Attributes are set with
 * setAttribute (never as handlers: listeners are added with `on`); strings and numbers become text nodes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "on") for (const [type, fn] of Object.entries(v)) el.addEventListener(type, fn);
    else if (k.startsWith("on")) throw new Error(`set ${k} with { on: { ... } }`);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (id) => document.getElementById(id);

/** "12 s ago", "3 min ago", "2 h ago", or "never". */
export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");

/** A table with a header row; `rows` are arrays of cells (strings or elements), labelled for narrow screens. */
export function table(headers, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => (r instanceof Node ? r : h("tr", {}, r.map((c, i) => cell(headers[i], c)))))));
}

export function cell(label, c) {
  return c instanceof Node && c.nodeName === "TD" ? c : h("td", { "data-label": label }, c);
}

export const short = (hex, n = 8) => (hex && hex.length > n ? `${hex.slice(0, n)}…` : hex ?? "");
