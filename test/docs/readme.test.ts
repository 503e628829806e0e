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

  it("README.md: the registry and provisioning curls", async () => {
    const lines = shellCommands("README.md").filter((l) => /^curl .*\/v1\//.test(l));
    assert.equal(lines.length, 2, lines.join("\n"));
    const run = async (l: string) => JSON.parse(await sh(l.replaceAll("<token>", stack.adminToken).replaceAll("127.0.0.1:8080", `127.0.0.1:${stack.ports.admin}`)));
    const provisioned = await run(lines.find((l) => l.includes(" -d "))!) as { device: { id: string; board: string }; config: string };
    assert.equal(provisioned.device?.board, "puckjs", JSON.stringify(provisioned));
    assert.match(provisioned.config, /^mode=psk;/);
    const list = await run(lines.find((l) => !l.includes(" -d "))!) as { devices: { id: string }[] };
    assert.ok(list.devices.some((d) => d.id === provisioned.device.id), JSON.stringify(list));
  });

  it("docs/CONTROLLER.md: the provisioning curl", async () => {
    const lines = shellCommands("docs/CONTROLLER.md").filter((l) => l.startsWith("curl "));
    assert.equal(lines.length, 1, lines.join("\n"));
    const out = JSON.parse(await sh(lines[0], { TOKEN: stack.adminToken, ADMIN_URL: `http://127.0.0.1:${stack.ports.admin}` })) as { device: { board: string; name: string } };
    assert.deepEqual([out.device.board, out.device.name], ["puckjs", "porch"]);
  });
});
