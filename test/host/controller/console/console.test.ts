// The web console in a real headless Chromium against a real stack (controller with its embedded database
// and broker, a terminate gateway, simulated boards running the built bundles): sign in with the admin
// token, watch the fleet come online, provision a device (its configuration shown once, with a QR code),
// run a board with that configuration, send it a command and see it acknowledged, revoke the device and
// watch its session end. The device is named
// <script>alert(1)</script>: it must show as text and never run. Screenshots are kept in
// test-artifacts/console/ (git-ignored).
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import qrcode from "qrcode-generator";
import { SimLinkClient } from "../../../../host/gateway/simlink";
import { runFleet } from "../../../../host/sim/fleet";
import { REPO_ROOT } from "../../../../scripts/build";
import { ensureBuilt } from "../../../harness/build-once";
import { launchChromium } from "../../../harness/chromium";
import { simMux } from "../../../harness/sim-mux";
import { startStack } from "../../../harness/stack";

// What the functions below see when they run in the page (this file is compiled without the DOM's types).
declare const document: any, sessionStorage: any, localStorage: any;

export const ARTIFACTS = join(REPO_ROOT, "test-artifacts", "console");
const EVIL = "<script>alert(1)</script>";

describe("web console in headless Chromium", function () {
  this.timeout(240_000);
  before(async function () {
    const { error } = await ensureBuilt();
    assert.equal(error, undefined, error);
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  for (const mode of ["terminate", "relay"] as const)
  it(`${mode} mode: signs in, shows the fleet online, provisions a device with its QR code, commands it, revokes it and shows its session end`, async () => {
    const s = await startStack(mode);
    const shot = (name: string) => join(ARTIFACTS, `${mode}-${name}.png`);
    const client = new SimLinkClient("127.0.0.1", s.simPort, s.simSecret);
    const port = simMux(client);
    const stops = { a: false, b: false };
    const fleets: Promise<unknown>[] = [];
    const browser = await launchChromium();
    const alerts: string[] = [];
    try {
      // Three boards provisioned the way `npm start` does, before anyone looks.
      let n = 0;
      fleets.push(runFleet({
        boards: 3, link: "ble", loss: 0, minutes: 60, seed: 11, gateway: port(), periodBle: 2, profiles: ["puckjs", "mdbt42q"],
        provision: async (p) => {
          const r = await s.controller.store.registry.provision({ board: p.name, name: `greenhouse-${++n}` });
          return { device: r.device.id, config: r.config };
        },
        realtime: { stop: () => stops.a },
      }));

      const page = await browser.context.newPage();
      page.on("dialog", (d) => {
        if (d.type() === "confirm") return void d.accept();
        alerts.push(`${d.type()}: ${d.message()}`);
        void d.dismiss();
      });
      const admin = `http://127.0.0.1:${s.ports.admin}`;
      // "/" leads to the console; a wrong token is refused, the right one signs in.
      await page.goto(`${admin}/`);
      assert.match(page.url(), /\/console\/$/);
      await page.fill("#token", "not-the-token");
      await page.click("#signin-form button[type=submit]");
      await page.waitForFunction(() => document.getElementById("signin-error")?.textContent === "That token was not accepted.");
      await page.fill("#token", s.adminToken);
      await page.click("#signin-form button[type=submit]");
      await page.waitForSelector("#fleet-table");
      assert.equal(await page.evaluate(() => sessionStorage.length), 1, "the token is kept in this tab's sessionStorage");
      assert.equal(await page.evaluate(() => localStorage.length + document.cookie.length), 0, "and nowhere else");

      // The fleet comes online without a reload: the event stream updates the table.
      await page.waitForFunction(() => document.getElementById("online-count")?.textContent === "3/3", undefined, { timeout: 90_000 });
      await page.waitForFunction(() => [...document.querySelectorAll("#fleet-table tbody tr")].every((tr: any) => /SPI 0x/.test(tr.textContent ?? "")), undefined, { timeout: 30_000 });

      // Each device's signal: in terminate mode the gateway reports the RSSI of its records (GATEWAY_STATUS);
      // a relay gateway cannot say (RELAY_UP has no room for it), so the console says it is unknown.
      const rssiCells = () => page.$$eval('#fleet-table tbody td[data-label="RSSI"]', (tds) => tds.map((td: any) => td.textContent));
      if (mode === "terminate") {
        await page.waitForFunction(() => {
          const tds = [...document.querySelectorAll('#fleet-table tbody td[data-label="RSSI"]')];
          return tds.length === 3 && tds.every((td: any) => /^-\d+ dBm$/.test(td.textContent));
        }, undefined, { timeout: 30_000 });
        const api = await (await fetch(`${admin}/v1/fleet`, { headers: { authorization: `Bearer ${s.adminToken}` } })).json() as { devices: { signal: { link: string; rssi: number; rssiAvg: number; snr: number | null } | null }[] };
        for (const d of api.devices) {
          assert.ok(d.signal !== null && d.signal.link === "ble" && d.signal.snr === null, JSON.stringify(d.signal));
          assert.ok(d.signal.rssi >= -95 && d.signal.rssi <= -40 && d.signal.rssiAvg >= -95 && d.signal.rssiAvg <= -40, `a BLE RSSI in dBm: ${JSON.stringify(d.signal)}`);
        }
      } else {
        assert.deepEqual(await rssiCells(), ["unknown", "unknown", "unknown"]);
      }

      // The gateway's own queues as it reports them, live.
      await page.click("#nav-gateways");
      await page.waitForFunction(() => /^\d+ msgs, \d+ B$/.test(document.querySelector('#gateways-table tbody td[data-label="Its backbone queue"]')?.textContent ?? ""), undefined, { timeout: 30_000 });
      // Device sessions the gateway holds: the three boards' in terminate mode, none in relay mode (the controller holds them).
      await page.waitForFunction((n) => document.querySelector('#gateways-table tbody td[data-label="Sessions"]')?.textContent === n, mode === "terminate" ? "3" : "0", { timeout: 30_000 });
      assert.match((await page.textContent('#gateways-table tbody td[data-label="Held commands"]')) ?? "", /^\d+$/);
      await page.screenshot({ path: shot("gateways"), fullPage: true });

      // Provision: the configuration is shown once, as text and as a QR code of that text.
      await page.click("#nav-provision");
      await page.selectOption("#provision-board", "banglejs2");
      await page.fill("#provision-name", EVIL);
      await page.click("#provision-form button[type=submit]");
      await page.waitForSelector("#secret[open]");
      const config = (await page.textContent("#secret-config")) ?? "";
      assert.match(config, /^mode=psk;order=I;id=[0-9a-f]{32};psk=[0-9a-f]{64}/);
      await qrMatches(page, config);
      await page.screenshot({ path: shot("provisioned") });
      await page.click("#secret-done");
      assert.equal(await page.textContent("#secret-config"), "", "the configuration is wiped when the dialog closes");
      await page.waitForURL(/#\/device\/[0-9a-f]+$/);
      const id = page.url().split("/").pop()!;
      // The name is text: the heading shows the characters and no script ran or was added.
      await page.waitForFunction((name) => document.getElementById("device-name")?.textContent === name, EVIL);

      // A board flashed with that configuration comes online, in the console too.
      fleets.push(runFleet({
        boards: 1, link: "ble", loss: 0, minutes: 60, seed: 12, gateway: port(), periodBle: 2, profiles: ["banglejs2"],
        provision: async () => ({ device: id, config }), realtime: { stop: () => stops.b },
      }));
      await page.waitForFunction(() => document.getElementById("device-state")?.textContent === "online", undefined, { timeout: 60_000 });
      await page.waitForFunction(() => /open/.test(document.querySelector("#sessions-table tbody")?.textContent ?? ""), undefined, { timeout: 30_000 });
      await page.waitForFunction(() => (document.querySelectorAll("#readings-table tbody tr").length ?? 0) >= 2, undefined, { timeout: 30_000 });
      if (mode === "terminate") await page.waitForFunction(() => /^-\d+ dBm$/.test(document.getElementById("device-signal")?.textContent ?? ""), undefined, { timeout: 30_000 });
      // A command (LED on) goes down through the gateway; the console shows it acknowledged by the board.
      await page.fill("#command-bytes", "02 01");
      await page.click("#command-form button[type=submit]");
      await page.waitForFunction(() => /acked/.test(document.querySelector("#commands-table tbody")?.textContent ?? ""), undefined, { timeout: 60_000 });

      await page.click("#nav-fleet");
      await page.waitForFunction(() => document.getElementById("online-count")?.textContent === "4/4", undefined, { timeout: 30_000 });
      const names = await page.$$eval("#fleet-table tbody tr td:first-child", (tds) => tds.map((td: any) => td.textContent));
      assert.ok(names.includes(EVIL), `the fleet lists the device by its name as text: ${JSON.stringify(names)}`);
      await page.screenshot({ path: shot("fleet"), fullPage: true });

      // Revoke it: the console shows the device revoked and its session ended, without a reload.
      await page.click(`#fleet-table tr[data-id="${id}"]`);
      await page.waitForSelector("#revoke");
      await page.click("#revoke");
      await page.waitForFunction(() => document.getElementById("device-state")?.textContent === "revoked", undefined, { timeout: 30_000 });
      await page.waitForFunction(() => /device revoked/.test(document.querySelector("#sessions-table tbody")?.textContent ?? ""), undefined, { timeout: 30_000 });
      assert.doesNotMatch((await page.textContent("#sessions-table tbody")) ?? "", /\bopen\b/, "no session of the revoked device is shown open");
      await page.screenshot({ path: shot("revoked"), fullPage: true });

      const open = await s.controller.store.sessions.list({ deviceId: id, openOnly: true });
      assert.equal(open.length, 0, "the session log has no open session of the revoked device");
      assert.deepEqual(alerts, [], "no script ran from the device's name");
      assert.equal(await page.evaluate(() => document.scripts.length), 1, "the page holds only its own module script");

      // On a phone: the fleet's rows become cards that fit the screen's width.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.click("#nav-fleet");
      await page.waitForSelector("#fleet-table");
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), "nothing wider than the phone's screen");
      await page.screenshot({ path: shot("phone-fleet"), fullPage: true });

      // Every call the console made is in the audit log; an event stream is one row per connection, not per event.
      const audit = await s.controller.store.audit.list({ limit: 1000 });
      const actions = audit.map((a) => a.action);
      for (const a of ["whoami", "device.provision", "device.command", "device.revoke", "fleet.device", "events.stream"]) assert.ok(actions.includes(a), `audited: ${a}`);
      assert.ok(actions.filter((a) => a === "events.stream").length <= 6, `event streams audited per connection: ${actions.filter((a) => a === "events.stream").length}`);

      // A large fleet: the console shows the whole in numbers and a page of rows; the pager and the search reach any device.
      if (mode === "terminate") {
        await s.controller.store.db.query(
          "INSERT INTO devices (id, name, board, mode, kid, public_key) SELECT lpad(to_hex(g), 16, '0'), 'sensor-' || g, 'puckjs', 'dh', lpad(to_hex(g), 8, '0'), decode(repeat('ab', 32), 'hex') FROM generate_series(1, 20000) g",
        );
        await page.setViewportSize({ width: 1280, height: 900 });
        await page.reload();
        await page.waitForFunction(() => document.getElementById("fleet-range")?.textContent === "1–100 of 20004", undefined, { timeout: 30_000 });
        const order = (await s.controller.store.db.query<{ id: string }>("SELECT id FROM devices ORDER BY created_at, id")).map((d) => d.id);
        const shown = () => page.$$eval("#fleet-table tbody tr", (trs) => trs.map((tr: any) => tr.dataset.id));
        assert.deepEqual(await shown(), order.slice(0, 100));
        assert.equal(await page.textContent("#online-count"), "3/20003", "the numbers are the whole fleet's (the revoked device left out)");
        await page.click("#fleet-next");
        await page.waitForFunction(() => document.getElementById("fleet-range")?.textContent === "101–200 of 20004");
        assert.deepEqual(await shown(), order.slice(100, 200));
        await page.fill("#fleet-search", "sensor-12345");
        await page.waitForFunction(() => document.getElementById("fleet-range")?.textContent === "1–1 of 1");
        assert.deepEqual(await page.$$eval("#fleet-table tbody tr td:first-child", (tds) => tds.map((td: any) => td.textContent)), ["sensor-12345"]);
        await page.screenshot({ path: shot("large-fleet"), fullPage: true });
      }
    } finally {
      stops.a = stops.b = true;
      await Promise.all(fleets).catch(() => {});
      await browser.close();
      client.close();
      await s.close();
    }
  });
});

/** The QR code on the page is the one qrcode-generator makes of `text` (module for module). */
async function qrMatches(page: Page, text: string): Promise<void> {
  const drawn = await page.evaluate(() => {
    const c = document.getElementById("secret-qr");
    const n = Number(c.dataset.modules);
    const scale = c.width / (n + 8);
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const rows: string[] = [];
    for (let r = 0; r < n; r++) {
      let row = "";
      for (let col = 0; col < n; col++) row += px[(((r + 4) * scale + 1) * c.width + (col + 4) * scale + 1) * 4] < 128 ? "1" : "0";
      rows.push(row);
    }
    return rows;
  });
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const want = Array.from({ length: qr.getModuleCount() }, (_, r) => Array.from({ length: qr.getModuleCount() }, (_, c) => (qr.isDark(r, c) ? "1" : "0")).join(""));
  assert.deepEqual(drawn, want, "the QR code shows the configuration");
}
