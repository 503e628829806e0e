import assert from "node:assert/strict";
import { DropOldestQueue } from "../../../host/controller/mqtt-queue";
import { deviceIdProblem, eventBody, parseCommand, topicsFor, uplinkBody } from "../../../host/controller/mqtt-topics";

const json = (s: string) => new Uint8Array(Buffer.from(s));

describe("MQTT topics and bodies", () => {
  it("lays topics out per device under a configurable prefix", () => {
    const t = topicsFor();
    assert.equal(t.up("puck-1"), "sesame/devices/puck-1/up");
    assert.equal(t.down("puck-1"), "sesame/devices/puck-1/down");
    assert.equal(t.events("puck-1"), "sesame/devices/puck-1/events");
    assert.equal(t.downFilter, "sesame/devices/+/down");
    const site = topicsFor("sesame/site-a");
    assert.equal(site.up("x"), "sesame/site-a/devices/x/up");
    assert.equal(site.deviceOfDown("sesame/site-a/devices/x/down"), "x");
    assert.equal(site.deviceOfDown("sesame/devices/x/down"), undefined);
    assert.equal(site.deviceOfDown("sesame/site-a/devices/x/up"), undefined);
    assert.equal(site.deviceOfDown("sesame/site-a/devices//down"), undefined);
  });

  it("refuses prefixes and device ids that would break the topic tree", () => {
    for (const bad of ["", "a/#", "a/+/b", "/a", "a/", "a//b"]) assert.throws(() => topicsFor(bad), /prefix/);
    for (const bad of ["", "a/b", "a+", "#", "x\u0000", "x".repeat(129)]) assert.ok(deviceIdProblem(bad), JSON.stringify(bad));
    assert.equal(deviceIdProblem("70B3D57ED005A1B2"), undefined);
    assert.ok(deviceIdProblem(42));
  });

  it("uplink body: device, seq, receivedAt, base64 payload, gateway", () => {
    const payload = new Uint8Array([0, 1, 2, 250, 251, 252]);
    const body = JSON.parse(uplinkBody({ device: "d1", seq: 7, payload, gateway: "gw-1", receivedAt: 0, transport: "ble" }));
    assert.deepEqual(body, { device: "d1", seq: 7, receivedAt: "1970-01-01T00:00:00.000Z", payload: "AAEC+vv8", size: 6, gateway: "gw-1", transport: "ble" });
    // A view into a larger buffer encodes only its own bytes.
    const big = new Uint8Array([9, 9, 1, 2, 9]);
    assert.equal(JSON.parse(uplinkBody({ device: "d", seq: 0, payload: big.subarray(2, 4) })).payload, "AQI=");
  });

  it("event body keeps device, event and time over details of the same name", () => {
    const body = JSON.parse(eventBody("d1", "revoked", { device: "spoof", by: "admin", epoch: 3 }, 1000));
    assert.deepEqual(body, { device: "d1", event: "revoked", at: "1970-01-01T00:00:01.000Z", by: "admin", epoch: 3 });
  });

  it("parses commands in base64 or hex, with confirmed", () => {
    const a = parseCommand(json('{"payload":"AQID"}'));
    assert.ok(a.ok);
    assert.deepEqual([...a.command.payload], [1, 2, 3]);
    assert.equal(a.command.confirmed, false);
    const b = parseCommand(json('{"payload":"0a0BfF","encoding":"hex","confirmed":true,"fPort":2}'));
    assert.ok(b.ok);
    assert.deepEqual([...b.command.payload], [0x0a, 0x0b, 0xff]);
    assert.equal(b.command.confirmed, true);
    const empty = parseCommand(json('{"payload":""}'));
    assert.ok(empty.ok && empty.command.payload.length === 0);
  });

  it("refuses malformed commands with a reason, never a throw", () => {
    const cases: [string, RegExp][] = [
      ["not json", /not JSON/],
      ["[1,2]", /JSON object/],
      ["null", /JSON object/],
      ['{"data":"AQID"}', /"payload" must be a string/],
      ['{"payload":5}', /"payload" must be a string/],
      ['{"payload":"AQI"}', /not valid base64/],
      ['{"payload":"A@==" }', /not valid base64/],
      ['{"payload":"abc","encoding":"hex"}', /not valid hex/],
      ['{"payload":"zz","encoding":"hex"}', /not valid hex/],
      ['{"payload":"AQID","encoding":"utf8"}', /"encoding"/],
      ['{"payload":"AQID","confirmed":"yes"}', /"confirmed"/],
      [JSON.stringify({ payload: Buffer.alloc(17).toString("base64") }), /exceeds the limit of 16/],
      [JSON.stringify({ payload: "00".repeat(2000), encoding: "hex" }), /too long/],
    ];
    for (const [body, why] of cases) {
      const r = parseCommand(json(body), 16);
      assert.equal(r.ok, false, body);
      if (!r.ok) assert.match(r.reason, why, body);
    }
    // Bytes that are not UTF-8 at all.
    assert.equal(parseCommand(new Uint8Array([0xff, 0xfe, 0x00])).ok, false);
  });
});

describe("drop-oldest queue", () => {
  it("keeps the newest `capacity` entries and counts what it dropped", () => {
    const q = new DropOldestQueue<number>(3);
    for (let i = 0; i < 7; i++) q.push(i);
    assert.equal(q.length, 3);
    assert.equal(q.dropped, 4);
    assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], [4, 5, 6, undefined]);
    q.push(10);
    assert.equal(q.clear(), 1);
    assert.equal(q.length, 0);
    assert.throws(() => new DropOldestQueue(0), /positive integer/);
  });
});
