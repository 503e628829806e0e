// `sesame controller`'s options for an external broker over TLS: a file it cannot use is a clear error before
// anything is made on disk.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONTROLLER, runController } from "../../../host/cli/controller";
import { parseOptions, UsageError } from "../../../host/cli/options";
import { Logger, memorySink } from "../../../host/telemetry/log";

describe("sesame controller: external broker options", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "sesame-cli-"));
    writeFileSync(join(dir, "not.pem"), "just some text\n");
    writeFileSync(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function refusal(...args: string[]): Promise<string> {
    const v = parseOptions(CONTROLLER, ["--master-key-dir", join(dir, "keys"), "--key-file", join(dir, "controller.key"), "--data-dir", join(dir, "db"), ...args], {});
    const err = await runController(v, Logger.create({ level: "silent", stream: memorySink() })).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UsageError, `expected a usage error, got ${String(err)}`);
    assert.equal(existsSync(join(dir, "keys")), false, "nothing is made before the options are checked");
    return err.message;
  }

  it("says which file it cannot read, which is not PEM, and which options need which", async () => {
    assert.match(await refusal("--mqtt-url", "mqtts://u:p@127.0.0.1:8883", "--mqtt-ca", join(dir, "missing.crt")), /--mqtt-ca ".*missing.crt": cannot read it \(ENOENT\); give the path of a PEM file/);
    assert.match(await refusal("--mqtt-url", "mqtts://u:p@127.0.0.1:8883", "--mqtt-ca", dir), /--mqtt-ca ".*": cannot read it \(EISDIR\)/);
    assert.match(await refusal("--mqtt-url", "mqtts://u:p@127.0.0.1:8883", "--mqtt-ca", join(dir, "not.pem")), /not a PEM file/);
    assert.match(await refusal("--mqtt-ca", join(dir, "ca.pem")), /are for an external broker: give --mqtt-url too/);
    assert.match(await refusal("--mqtt-url", "mqtt://u:p@127.0.0.1:1883", "--mqtt-ca", join(dir, "ca.pem")), /--mqtt-url: .*needs a TLS URL \(mqtts:\/\/ or wss:\/\/\), not mqtt:/);
    assert.match(await refusal("--mqtt-url", "mqtts://u:p@127.0.0.1:8883", "--mqtt-cert", join(dir, "ca.pem")), /needs both the certificate and its key/);
  });
});
