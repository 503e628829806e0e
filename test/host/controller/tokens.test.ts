import assert from "node:assert/strict";
import { RateLimiter } from "../../../host/controller/ratelimit";
import { newMqttPassword } from "../../../host/controller/mqtt-password";
import { generateToken, hashToken, parseAdminTokens, TokenVerifier } from "../../../host/controller/tokens";

describe("admin tokens and rate limits", () => {
  it("tokens are configured by id and SHA-256 only; the verifier finds the id of a presented token", () => {
    const a = generateToken(), b = generateToken();
    assert.match(a.token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(a.sha256, hashToken(a.token));
    const list = parseAdminTokens(`ops:${a.sha256}, ci:${b.sha256.toUpperCase()}`);
    assert.deepEqual(list, [{ id: "ops", sha256: a.sha256 }, { id: "ci", sha256: b.sha256 }]);
    assert.deepEqual(parseAdminTokens(JSON.stringify(list)), list);
    const v = new TokenVerifier(list);
    assert.equal(v.verify(a.token), "ops");
    assert.equal(v.verify(b.token), "ci");
    assert.equal(v.verify(a.token + "x"), undefined);
    assert.equal(v.verify(""), undefined);
    assert.equal(v.verify(a.sha256), undefined); // the digest is not a token
  });

  it("a token never starts with a dash, so `--token <it>` is never read as an option", () => {
    // 1 in 64 base64url texts starts with "-": 2,000 draws would meet one with probability 1 - (63/64)^2000.
    for (let i = 0; i < 2000; i++) assert.notEqual(generateToken().token[0], "-");
    for (let i = 0; i < 2000; i++) assert.notEqual(newMqttPassword()[0], "-");
  });

  it("bad token configuration is a clear error", () => {
    const t = generateToken();
    assert.throws(() => parseAdminTokens(`ops:${t.token}`), /ops: sha256 must be the token's SHA-256 as 64 hex characters \(not the token\)/);
    assert.throws(() => parseAdminTokens(`ops`), /ops: sha256 must be/);
    assert.throws(() => parseAdminTokens(`o ps:${t.sha256}`), /entry 1: id must be/);
    assert.throws(() => parseAdminTokens(`ops:${t.sha256},ops:${generateToken().sha256}`), /id ops appears twice/);
    assert.throws(() => parseAdminTokens(`ops:${t.sha256},ci:${t.sha256}`), /ci has the same token as another id/);
    assert.throws(() => parseAdminTokens(`[{"id":`), /not valid JSON/);
    assert.deepEqual(parseAdminTokens(""), []);
  });

  it("a bucket allows its burst, refills at its rate, and says when to retry", () => {
    let now = 0;
    const rl = new RateLimiter({ burst: 2, perSecond: 0.5 }, 100, () => now);
    assert.deepEqual([rl.take("a"), rl.take("a")], [{ ok: true }, { ok: true }]);
    assert.deepEqual(rl.take("a"), { ok: false, retryAfterSec: 2 });
    assert.deepEqual(rl.take("b"), { ok: true }); // buckets are per client
    now = 1000;
    assert.deepEqual(rl.peek("a"), { ok: false, retryAfterSec: 1 });
    now = 2000;
    assert.deepEqual(rl.peek("a"), { ok: true });
    assert.deepEqual(rl.take("a"), { ok: true });
    assert.equal(rl.take("a").ok, false);
    now = 60_000;
    assert.deepEqual([rl.take("a").ok, rl.take("a").ok, rl.take("a").ok], [true, true, false]); // never above burst
    assert.throws(() => new RateLimiter({ burst: 0, perSecond: 1 }), /burst must be >= 1/);
  });

  it("the table of clients is bounded: the least recently seen is forgotten", () => {
    const now = 0;
    const rl = new RateLimiter({ burst: 1, perSecond: 0.001 }, 2, () => now);
    rl.take("a");
    rl.take("b");
    rl.take("a"); // a seen again: b is now the oldest
    rl.take("c"); // evicts b
    assert.equal(rl.peek("a").ok, false);
    assert.equal(rl.peek("b").ok, true); // forgotten, back with a full bucket (and now evicts c)
  });
});
