// Who an admin API caller is and what it may do. Every request's credential is turned into a Principal in
// one place, the Credentials function the admin API is given (admin.ts); routes then ask the principal
// (`allows`, `sees`) instead of assuming an all-powerful caller. Today's credentials are admin tokens, which
// may do everything; a scoped credential (an application's, limited to some devices and some actions) is
// added by writing one more Credentials function and composing it with `firstOf` where the controller
// builds its admin API: the routes, the event stream and the web console already honour a narrower scope.
import { TokenVerifier, type AdminToken } from "./tokens";

export type Principal = {
  /** The audit log's actor and the rate limiter's key: a token id, never a secret. */
  actor: string;
  /** The devices it may see and act on. */
  devices: "all" | ReadonlySet<string>;
  /** The route actions (admin-routes.ts `action`) it may call. */
  actions: "all" | ReadonlySet<string>;
};

/** The principal a presented bearer credential stands for, or undefined when it stands for none. */
export type Credentials = (presented: string) => Promise<Principal | undefined>;

export function allows(p: Principal, action: string): boolean {
  return p.actions === "all" || p.actions.has(action);
}

export function sees(p: Principal, device: string): boolean {
  return p.devices === "all" || p.devices.has(device);
}

/** Admin tokens: every action on every device. */
export function adminCredentials(tokens: AdminToken[]): Credentials {
  const verifier = new TokenVerifier(tokens);
  return async (presented) => {
    const id = verifier.verify(presented);
    return id === undefined ? undefined : { actor: id, devices: "all", actions: "all" };
  };
}

/** The first of several kinds of credential that recognises the presented one. */
export function firstOf(...kinds: Credentials[]): Credentials {
  return async (presented) => {
    for (const k of kinds) {
      const p = await k(presented);
      if (p !== undefined) return p;
    }
    return undefined;
  };
}

/** What an application's credential may call, by its MQTT access: reading the fleet, and commands with "command". */
export const APPLICATION_READ = ["whoami", "board.list", "fleet.list", "fleet.device", "events.stream", "device.get", "session.list"];
export const APPLICATION_COMMAND = ["whoami", "board.list", "device.command"];

/** An application credential's login check (MqttCredentials.login): its access and devices, or undefined. */
export type ApplicationLogin = (username: string, password: Uint8Array) => Promise<{ access: "read" | "command" | "both"; devices: "all" | ReadonlySet<string> } | undefined>;

/**
 * Applications' MQTT credentials (presented as "username:password") as scoped principals, so an application's
 * operator can watch its own devices in the console. A check costs a database read and a PBKDF2, more than an
 * admin token's hash, so at most `perSecond` checks run a second whatever the presenters: past that a scoped
 * credential is refused (401) until the next second, while admin tokens (checked first) always pass.
 */
export function applicationCredentials(login: ApplicationLogin, perSecond = 50, now: () => number = Date.now): Credentials {
  let second = 0, used = 0;
  return async (presented) => {
    const m = /^(app-[0-9a-f]{12}):(\S{1,128})$/.exec(presented);
    if (m === null) return undefined;
    const t = Math.floor(now() / 1000);
    if (t !== second) [second, used] = [t, 0];
    if (++used > perSecond) return undefined;
    const id = await login(m[1], Buffer.from(m[2], "utf8"));
    if (id === undefined) return undefined;
    const actions = new Set([...(id.access !== "command" ? APPLICATION_READ : []), ...(id.access !== "read" ? APPLICATION_COMMAND : [])]);
    return { actor: m[1], devices: id.devices, actions };
  };
}
