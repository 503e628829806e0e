// Command-line options for every `sesame` command, from three places, later ones winning: a JSON config file
// (--config, or sesame.json in the working directory), SESAME_* environment variables (option
// "admin-port" is SESAME_ADMIN_PORT), and flags. A wrong value says which option, where it came from and
// what it should be; the commands exit with status 2 on it.
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { parseAdminTokens, type AdminToken } from "../controller/tokens";

export type OptionSpec = { type: "string" | "boolean"; help: string; default?: string; multiple?: boolean };
export type CommandSpec = { name: string; summary: string; options: Record<string, OptionSpec> };

export class UsageError extends Error {}

export function usage(c: CommandSpec): string {
  const lines = [`usage: sesame ${c.name} [options]`, "", c.summary, "", "options (flag, or SESAME_<NAME> in the environment, or the key in the --config JSON file):"];
  for (const [k, o] of Object.entries(c.options)) {
    lines.push(`  --${k}${o.type === "string" ? " <value>" : ""}`.padEnd(30) + o.help + (o.default !== undefined ? ` (default ${o.default})` : ""));
  }
  lines.push(`  --config <file>`.padEnd(30) + "JSON file of options (default ./sesame.json if present)", `  --help`.padEnd(30) + "this text");
  return lines.join("\n");
}

export type Values = Record<string, string | boolean | string[] | undefined> & { help?: boolean };

export function parseOptions(c: CommandSpec, argv: string[], env: NodeJS.ProcessEnv = process.env): Values {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = { config: { type: "string" }, help: { type: "boolean" } };
  for (const [k, o] of Object.entries(c.options)) options[k] = o.multiple ? { type: o.type, multiple: true } : { type: o.type };
  let flags: Values;
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\. To specify.*$/, "")}\nrun "sesame ${c.name} --help" for the options`);
  }
  if (flags.help) return flags;
  const file = (flags.config as string | undefined) ?? (fs.existsSync("sesame.json") ? "sesame.json" : undefined);
  let fromFile: Record<string, unknown> = {};
  if (file) {
    try {
      fromFile = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`config file ${file}: ${(e as Error).message}; it must be a JSON object of options, e.g. {"admin-port": "8080"}`);
    }
    for (const k of Object.keys(fromFile)) if (!(k in c.options)) throw new UsageError(`config file ${file}: unknown option "${k}" for "sesame ${c.name}"; known: ${Object.keys(c.options).join(", ")}`);
  }
  const out: Values = {};
  for (const [k, o] of Object.entries(c.options)) {
    const envName = "SESAME_" + k.toUpperCase().replace(/-/g, "_");
    let v: string | boolean | string[] | undefined = o.default;
    if (fromFile[k] !== undefined) v = o.type === "boolean" ? Boolean(fromFile[k]) : Array.isArray(fromFile[k]) ? (fromFile[k] as string[]).map(String) : String(fromFile[k]);
    if (env[envName] !== undefined) v = o.type === "boolean" ? env[envName] === "1" || env[envName] === "true" : o.multiple ? env[envName]!.split(",") : env[envName];
    if (flags[k] !== undefined) v = flags[k];
    out[k] = v;
  }
  return out;
}

export function str(v: Values, k: string): string {
  const x = v[k];
  if (typeof x !== "string" || x === "") throw new UsageError(`--${k} is required`);
  return x;
}

export function port(v: Values, k: string): number {
  const n = Number(v[k]);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${k} ${JSON.stringify(v[k])}: must be a port number 0..65535 (0 = any free port)`);
  return n;
}

/** One or more host:port, comma-separated. */
export function hostPorts(v: Values, k: string): { host: string; port: number }[] {
  return str(v, k).split(",").map((s) => {
    const m = /^([^,\s]+):(\d+)$/.exec(s.trim());
    if (!m || Number(m[2]) > 65535) throw new UsageError(`--${k} ${JSON.stringify(s)}: must be host:port (or several, comma-separated), e.g. 127.0.0.1:7300,127.0.0.1:7301`);
    return { host: m[1], port: Number(m[2]) };
  });
}

export function oneOf<T extends string>(v: Values, k: string, allowed: readonly T[]): T {
  const s = str(v, k);
  if (!allowed.includes(s as T)) throw new UsageError(`--${k} ${JSON.stringify(s)}: must be one of ${allowed.join(", ")}`);
  return s as T;
}

/** An integer option within [min, max]; `what` says what the number is, for the error. */
export function intIn(v: Values, k: string, min: number, max: number, what: string): number {
  const s = str(v, k);
  const n = Number(s);
  if (!/^-?\d+$/.test(s) || n < min || n > max) throw new UsageError(`--${k} ${JSON.stringify(s)}: must be ${what}, a whole number from ${min} to ${max}`);
  return n;
}

/** A list of tokens as {id, sha256} ("id:sha256,..." or JSON), empty when the option is not given. */
export function tokensOption(v: Values, k: string): AdminToken[] {
  if (!v[k]) return [];
  try {
    return parseAdminTokens(String(v[k]), k.replace("-", " "));
  } catch (e) {
    throw new UsageError(`--${k}: ${(e as Error).message}`);
  }
}
