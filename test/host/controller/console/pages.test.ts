// The console's files as the controller serves them: from memory, GET and HEAD only, a strict
// Content-Security-Policy, nothing outside the console's own files, a bucket per address; and the files
// themselves keep to what that policy and the escaping rule ask (no inline script, no handler attributes,
// no innerHTML, nothing fetched from another origin).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { join } from "node:path";
import { CONTENT_SECURITY_POLICY, consolePages } from "../../../../host/controller/console/pages";

const STATIC = join(import.meta.dirname, "../../../../host/controller/console/static");

describe("console pages", () => {
  let server: Server, base = "";
  const serve = async (limits?: { burst: number; perSecond: number }) => {
    server?.close();
    const pages = consolePages({ limits });
    server = createServer((req, res) => {
      if (!pages(req, res)) res.writeHead(401).end("the admin API");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  };
  after(() => server?.close());

  it("serves the console with a strict CSP, sends / there, and nothing else", async () => {
    await serve();
    const root = await fetch(`${base}/`, { redirect: "manual" });
    assert.equal(root.status, 303);
    assert.equal(root.headers.get("location"), "/console/");
    const index = await fetch(`${base}/console/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'(;|$)/);
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval/);
    assert.equal(index.headers.get("x-frame-options"), "DENY");
    assert.match(await index.text(), /<script type="module" src="app.js"><\/script>/);
    const qr = await fetch(`${base}/console/vendor/qrcode.mjs`);
    assert.equal(qr.status, 200);
    assert.match(qr.headers.get("content-type") ?? "", /^text\/javascript/);
    // Raw paths (fetch would resolve the dots itself): nothing but the console's own files.
    for (const path of ["/console/../package.json", "/console/%2e%2e/package.json", "/console/static/app.js", "/console/pages.ts", "/console/nope.js"]) {
      const status = await new Promise<number>((resolve, reject) => request(`${base}${path}`, { path }, (r) => (r.resume(), resolve(r.statusCode!))).on("error", reject).end());
      assert.equal(status, 404, path);
    }
    assert.equal((await fetch(`${base}/console/`, { method: "POST", body: "x" })).status, 405);
    assert.equal((await fetch(`${base}/v1/devices`)).status, 401, "the API's paths are left to the API");
  });

  it("limits requests per address", async () => {
    await serve({ burst: 5, perSecond: 0.01 });
    const codes = [];
    for (let i = 0; i < 7; i++) codes.push((await fetch(`${base}/console/app.js`)).status);
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429]);
  });

  it("has no inline script, no handler attributes, no innerHTML and no other origin in its files", () => {
    for (const name of readdirSync(STATIC)) {
      const text = readFileSync(join(STATIC, name), "utf8");
      if (name.endsWith(".html")) {
        for (const tag of text.match(/<script\b[^>]*>/g) ?? []) assert.match(tag, /\bsrc="/, `${name}: inline script ${tag}`);
        assert.doesNotMatch(text, /\son[a-z]+=/i, `${name}: a handler attribute`);
        assert.doesNotMatch(text, /\sstyle=/i, `${name}: an inline style`);
      }
      assert.doesNotMatch(text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/, `${name}: markup from strings`);
      assert.doesNotMatch(text, /(src|href)="(https?:)?\/\//, `${name}: something from another origin`);
    }
  });
});
