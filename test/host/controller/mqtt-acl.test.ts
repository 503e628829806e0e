// The embedded broker's rules on their own: who may publish, subscribe to and receive which topic, and the
// scanner that finds each MQTT packet's announced size without buffering it.
import assert from "node:assert/strict";
import { MqttAcl, type MqttIdentity } from "../../../host/controller/mqtt-acl";
import { MqttFrameScanner } from "../../../host/controller/mqtt-guard";
import { topicsFor } from "../../../host/controller/mqtt-topics";
import { remainingLength } from "../../harness/mqtt-clients";

const A = "0a0a0a0a0a0a0a0a", B = "0b0b0b0b0b0b0b0b";
const controller: MqttIdentity = { kind: "controller", username: "sesame-controller" };
const app = (access: "read" | "command" | "both", devices: "all" | string[] = "all"): MqttIdentity => ({
  kind: "application", username: "app-0123456789ab", access, devices: devices === "all" ? "all" : new Set(devices),
});

describe("MQTT ACL", () => {
  const acl = new MqttAcl(topicsFor("sesame/site-a"));
  const t = (device: string, kind: string) => `sesame/site-a/devices/${device}/${kind}`;

  it("publish: the controller writes up and events; applications only commands in scope; nobody retains", () => {
    assert.equal(acl.publishRefusal(controller, t(A, "up"), false), undefined);
    assert.equal(acl.publishRefusal(controller, t(A, "events"), false), undefined);
    assert.equal(acl.publishRefusal(controller, t(A, "down"), false), "not-allowed");
    assert.equal(acl.publishRefusal(controller, t(A, "up"), true), "retain");
    assert.equal(acl.publishRefusal(app("command", [A]), t(A, "down"), false), undefined);
    assert.equal(acl.publishRefusal(app("both"), t(B, "down"), false), undefined);
    assert.equal(acl.publishRefusal(app("command", [A]), t(B, "down"), false), "not-allowed");
    assert.equal(acl.publishRefusal(app("read"), t(A, "down"), false), "not-allowed");
    assert.equal(acl.publishRefusal(app("both"), t(A, "up"), false), "not-allowed");
    assert.equal(acl.publishRefusal(app("both"), t(A, "events"), false), "not-allowed");
    assert.equal(acl.publishRefusal(app("both"), t(A, "down"), true), "retain");
    assert.equal(acl.publishRefusal(app("both"), "sesame/devices/x/down", false), "not-allowed", "another prefix");
    assert.equal(acl.publishRefusal(app("both"), `sesame/site-a/devices/a/b/down`, false), "not-allowed");
    assert.equal(acl.publishRefusal(controller, "$SYS/x", false), "reserved");
    assert.equal(acl.publishRefusal(undefined, t(A, "down"), false), "not-allowed");
  });

  it("receive: readers get up and events of their devices; only the controller gets commands", () => {
    assert.equal(acl.mayReceive(app("read", [A]), t(A, "up")), true);
    assert.equal(acl.mayReceive(app("read", [A]), t(A, "events")), true);
    assert.equal(acl.mayReceive(app("read", [A]), t(B, "up")), false);
    assert.equal(acl.mayReceive(app("both"), t(A, "down")), false);
    assert.equal(acl.mayReceive(app("command"), t(A, "up")), false);
    assert.equal(acl.mayReceive(controller, t(A, "down")), true);
    assert.equal(acl.mayReceive(controller, t(A, "up")), false);
    assert.equal(acl.mayReceive(app("read"), "$SYS/broker/heartbeat"), false);
  });

  it("subscribe: a filter is granted when it can match something the client may receive", () => {
    const scoped = app("read", [A]);
    for (const f of ["#", "sesame/#", "sesame/+/devices/+/up", "sesame/site-a/devices/+/+", `sesame/site-a/devices/${A}/#`, t(A, "up"), "+/+/devices/+/events"]) {
      assert.equal(acl.maySubscribe(scoped, f), true, f);
    }
    for (const f of [t(B, "up"), "sesame/site-a/devices/+/down", "sesame/site-a/devices/+/up/more", "sesame/site-a/devices", "other/#", "$SYS/#", "sesame/site-a/things/+/up"]) {
      assert.equal(acl.maySubscribe(scoped, f), false, f);
    }
    assert.equal(acl.maySubscribe(app("command"), "sesame/#"), false, "command access reads nothing");
    assert.equal(acl.maySubscribe(controller, "sesame/site-a/devices/+/down"), true);
    assert.equal(acl.maySubscribe(controller, "sesame/site-a/devices/+/up"), false);
    assert.equal(acl.maySubscribe(undefined, "#"), false);
  });
});

describe("MQTT frame scanner", () => {
  const packet = (len: number) => Buffer.concat([Buffer.from([0x30]), remainingLength(len), Buffer.alloc(len)]);

  it("follows packets across any split and stops at the first one announced over the bound", () => {
    const scanner = new MqttFrameScanner(1000);
    const stream = Buffer.concat([packet(0), packet(10), packet(995), packet(200), packet(996), packet(1)]);
    // 995 bytes + 1 header byte + 2 length bytes = 998 fits; 996 makes 999; a third length byte would not.
    let problem: string | undefined;
    for (let i = 0; i < stream.length && problem === undefined; i += 7) problem = scanner.scan(stream.subarray(i, i + 7));
    assert.equal(problem, undefined);
    assert.equal(new MqttFrameScanner(1000).scan(packet(998)), "oversize");
    // The refusal comes with the header: a 100 MB announcement is refused from its first 5 bytes.
    assert.equal(new MqttFrameScanner(16384).scan(Buffer.concat([Buffer.from([0x31]), remainingLength(100 * 1024 * 1024)])), "oversize");
    assert.equal(new MqttFrameScanner(1 << 30).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), "malformed");
  });
});
