// What an operator does: provision a device (its configuration shown once, as text and as a QR code),
// rotate its keys (a new configuration, shown the same way), revoke it, send it a command. Each is one
// admin API call, audited like any other.
import { api, hexToBase64 } from "./api.js";
import { $, fill, h } from "./dom.js";
import { drawQr } from "./qr.js";

/** The provisioning form. */
export async function drawProvision(done) {
  const el = $("provision");
  const { boards } = await api("/v1/boards");
  const board = h("select", { id: "provision-board", name: "board", required: true }, boards.map((b) => h("option", { value: b.name }, b.name)));
  const mode = h("select", { id: "provision-mode", name: "mode" });
  const modes = () => {
    const b = boards.find((x) => x.name === board.value);
    fill(mode, h("option", { value: "" }, `default (${b.modes[0] === "dh" ? "dh" : "psk"})`), b.modes.map((m) => h("option", { value: m }, m)));
  };
  board.addEventListener("change", modes);
  modes();
  const name = h("input", { id: "provision-name", name: "name", maxlength: "64", autocomplete: "off", placeholder: "e.g. greenhouse-3" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { id: "provision-form", on: { submit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const body = { board: board.value };
      if (mode.value !== "") body.mode = mode.value;
      if (name.value !== "") body.name = name.value;
      const p = await api("/v1/devices", { method: "POST", body });
      name.value = "";
      showSecret(p, "Provisioned", () => done(p.device.id));
    } catch (err) {
      error.textContent = err.message;
    }
  } } },
  h("label", { for: "provision-board" }, "Board"), board,
  h("label", { for: "provision-mode" }, "Handshake mode"), mode,
  h("label", { for: "provision-name" }, "Name (optional)"), name,
  h("button", { type: "submit" }, "Provision"), error);
  fill(el, h("h1", {}, "Provision a device"), form,
    h("p", { class: "hint" }, "The controller makes the device's keys and shows its configuration once: flash it to the board, or scan the QR code."));
}

/** The configuration dialog: text and QR code, wiped from the page when closed. */
export function showSecret(p, what, closed) {
  const dialog = $("secret");
  $("secret-title").textContent = `${what}: device configuration`;
  $("secret-device").textContent = `${p.device.name === "" ? "" : `${p.device.name} · `}${p.device.board} · ${p.device.mode} · ${p.device.id}`;
  $("secret-config").textContent = p.config;
  drawQr($("secret-qr"), p.config);
  const copy = $("secret-copy");
  copy.onclick = () => void navigator.clipboard?.writeText(p.config).then(() => (copy.textContent = "Copied"), () => (copy.textContent = "Copy failed: select the text"));
  const wipe = () => {
    $("secret-config").textContent = "";
    const qr = $("secret-qr");
    qr.getContext("2d").clearRect(0, 0, qr.width, qr.height);
    qr.width = qr.height = 0;
    copy.textContent = "Copy";
  };
  $("secret-done").onclick = () => {
    wipe();
    dialog.close();
  };
  // Also when closed with Escape.
  dialog.addEventListener("close", () => {
    wipe();
    closed?.();
  }, { once: true });
  dialog.showModal();
}

/** Rotate, revoke, command: the buttons of a live device. */
export function deviceActions(r, refresh, may) {
  const error = h("p", { class: "error", role: "alert", id: "action-error" });
  const act = (fn) => async () => {
    error.textContent = "";
    try {
      await fn();
    } catch (e) {
      error.textContent = e.message;
    }
  };
  const label = r.name === "" ? r.id : r.name;
  const rotate = h("button", { type: "button", class: "plain", id: "rotate", on: { click: act(async () => {
    if (!confirm(`Rotate the keys of ${label}? Its sessions end, and it needs the new configuration flashed.`)) return;
    showSecret(await api(`/v1/devices/${r.id}/rotate`, { method: "POST" }), "Rotated", refresh);
  }) } }, "Rotate keys");
  const revoke = h("button", { type: "button", class: "danger", id: "revoke", on: { click: act(async () => {
    if (!confirm(`Revoke ${label}? Its sessions end and it can never connect again.`)) return;
    await api(`/v1/devices/${r.id}/revoke`, { method: "POST" });
    refresh();
  }) } }, "Revoke");
  const bytes = h("input", { id: "command-bytes", placeholder: "hex, e.g. 02 01", autocomplete: "off", spellcheck: "false", size: "14", "aria-label": "Command bytes in hex" });
  const command = h("form", { id: "command-form", on: { submit: (e) => {
    e.preventDefault();
    void act(async () => {
      await api(`/v1/devices/${r.id}/command`, { method: "POST", body: { payload: hexToBase64(bytes.value) } });
      bytes.value = "";
    })();
  } } }, bytes, h("button", { type: "submit" }, "Send command"));
  return h("div", {},
    h("div", { class: "actions" }, may("device.rotate") ? rotate : null, may("device.revoke") ? revoke : null, may("device.command") ? command : null),
    error);
}
