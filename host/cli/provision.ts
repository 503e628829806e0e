// `sesame provision` and `sesame token`: the admin API's provisioning call from the shell, and a new admin
// token (the controller is given only its hash).
import { writePrivateFile } from "../controller/private-files";
import { generateToken } from "../controller/tokens";
import { CommandSpec, str, UsageError, Values } from "./options";

export const PROVISION: CommandSpec = {
  name: "provision",
  summary: "Provisions a device through the admin API and prints (or writes) the configuration to flash onto it.",
  options: {
    admin: { type: "string", help: "the controller's admin API", default: "http://127.0.0.1:8080" },
    token: { type: "string", help: "admin token (SESAME_TOKEN)" },
    board: { type: "string", help: "board profile (boards/*.json), e.g. puckjs" },
    mode: { type: "string", help: "dh or psk (default: the board's)" },
    name: { type: "string", help: "a name for the device" },
    out: { type: "string", help: "write the configuration to this file (for npm run flash -- --config)" },
  },
};

export const TOKEN: CommandSpec = {
  name: "token",
  summary: "Makes an admin token: prints the token (give it to API clients) and id:sha256 (give that to the controller's --admin-tokens).",
  options: { id: { type: "string", help: "a name for the token's holder", default: "admin" } },
};

export async function runProvision(v: Values): Promise<void> {
  const body: Record<string, string> = { board: str(v, "board") };
  if (v.mode) body.mode = String(v.mode);
  if (v.name) body.name = String(v.name);
  let res: Response;
  try {
    res = await fetch(new URL("/v1/devices", str(v, "admin")), {
      method: "POST", headers: { authorization: `Bearer ${str(v, "token")}`, "content-type": "application/json" }, body: JSON.stringify(body),
    });
  } catch (e) {
    throw new UsageError(`cannot reach the admin API at ${v.admin}: ${(e as Error).message}; is "sesame controller" running?`);
  }
  const text = await res.text();
  if (!res.ok) throw new UsageError(`the admin API said ${res.status}: ${text}`);
  const r = JSON.parse(text) as { device: { id: string }; config: string };
  if (v.out) {
    // It holds the device's key: owner-only, even over an older file that was not.
    writePrivateFile(String(v.out), r.config, { overwrite: true });
    process.stdout.write(`device ${r.device.id}: configuration written to ${v.out}\n`);
  } else process.stdout.write(r.config + "\n");
}

export function runToken(v: Values): void {
  const t = generateToken();
  process.stdout.write(`token:        ${t.token}\n--admin-tokens ${str(v, "id")}:${t.sha256}\n`);
}
