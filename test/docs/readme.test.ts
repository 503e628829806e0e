// The admin API commands the README and docs/CONTROLLER.md show are run exactly as written (only the token
// and the port put in) against a live controller, so the documents cannot drift from the API again: the
// README's provisioning curl once sent no JSON content type and got 415.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { startStack } from "../harness/stack";

/** The shell blocks of a Markdown document, their backslash-continued lines joined. */
function shellCommands(file: string): string[] {
  const doc = readFileSync(file, "utf8");
  return [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1].replace(/\\\n\s*/g, "").split("\n"));
}

/** The command's output; the controller runs in this process, so the shell must not block it. */
async function sh(command: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return (await promisify(execFile)("/bin/sh", ["-c", command], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 30_000 })).stdout;
}

describe("the documents' admin API commands work as written", function () {
  this.timeout(120_000);
  let stack: Awaited<ReturnType<typeof startStack>>;
  before(async () => (stack = await startStack("terminate")));
  after(() => stack.close());

  it("README.md: every admin API and metrics curl", async () => {
    const lines = shellCommands("README.md").filter((l) => /^curl .*127\.0\.0\.1:8080\//.test(l));
    const fill = (l: string) => l.replaceAll("<token>", stack.adminToken).replaceAll("<metrics token>", stack.metricsToken).replaceAll("127.0.0.1:8080", `127.0.0.1:${stack.ports.admin}`);
    // Every /v1 call answers JSON that is not an error (a 415 or 401 body names one).
    const api = lines.filter((l) => l.includes("/v1/"));
    assert.ok(api.length >= 3, lines.join("\n"));
    const answers = new Map<string, Record<string, unknown>>();
    for (const l of api) {
      const out = JSON.parse(await sh(fill(l))) as Record<string, unknown>;
      assert.equal(out.error, undefined, `${l}: ${JSON.stringify(out)}`);
      answers.set(l, out);
    }
    const provisioned = [...answers].find(([l]) => l.includes('"board"'))![1] as { device: { id: string; board: string }; config: string };
    assert.equal(provisioned.device?.board, "puckjs", JSON.stringify(provisioned));
    assert.match(provisioned.config, /^mode=psk;/);
    const login = [...answers].find(([l]) => l.includes("/v1/mqtt/credentials"))![1] as { credential: { username: string }; password: string };
    assert.ok(login.credential.username && login.password, JSON.stringify(login));
    // The controller's /metrics with the metrics token.
    const metrics = lines.find((l) => /:8080\/metrics/.test(l));
    assert.ok(metrics, lines.join("\n"));
    assert.match(await sh(fill(metrics)), /^# HELP sesame_/m);
  });

  it("docs/CONTROLLER.md: the provisioning curl", async () => {
    // (The event stream's curl runs for good: the console test covers the stream.)
    const lines = shellCommands("docs/CONTROLLER.md").filter((l) => l.startsWith("curl ") && !l.includes("/v1/events"));
    assert.equal(lines.length, 1, lines.join("\n"));
    const out = JSON.parse(await sh(lines[0], { TOKEN: stack.adminToken, ADMIN_URL: `http://127.0.0.1:${stack.ports.admin}` })) as { device: { board: string; name: string } };
    assert.deepEqual([out.device.board, out.device.name], ["puckjs", "porch"]);
  });
});
