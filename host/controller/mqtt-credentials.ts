// Application credentials for MQTT, the way operators give them out on Mosquitto or ChirpStack: a username
// and a password per application, each scoped to devices (all, or a list) and to read, command or both.
// sesame makes the password (144 random bits), shows it once in the create response and keeps only its
// hash (./mqtt-password.ts); a revoked credential stops working at once (the embedded broker listens to
// onRevoke and disconnects its clients). mosquittoFiles() writes the same credentials as a Mosquitto password
// file and ACL, for operators who run Mosquitto in place of the embedded broker.
import { randomBytes } from "node:crypto";
import type { Db } from "./db/db";
import type { MqttAccess, MqttIdentity } from "./mqtt-acl";
import { hashMqttPassword, newMqttPassword, NO_PASSWORD, verifyMqttPassword } from "./mqtt-password";
import { DEFAULT_PREFIX } from "./mqtt-topics";
import { RegistryError } from "./registry";

export type MqttCredential = {
  username: string;
  name: string;
  devices: "all" | string[];
  access: MqttAccess;
  createdAt: string;
  revokedAt: string | null;
};

export type NewMqttCredential = { credential: MqttCredential; password: string };
export type CredentialRevokeListener = (username: string) => void;

type Row = { username: string; name: string; devices: string[] | null; access: MqttAccess; created_at: Date; revoked_at: Date | null };
const COLUMNS = "username, name, devices, access, created_at, revoked_at";

function record(r: Row): MqttCredential {
  return {
    username: r.username, name: r.name, devices: r.devices === null ? "all" : [...r.devices], access: r.access,
    createdAt: r.created_at.toISOString(), revokedAt: r.revoked_at?.toISOString() ?? null,
  };
}

export class MqttCredentials {
  private readonly listeners = new Set<CredentialRevokeListener>();

  constructor(private readonly db: Db) {}

  /** Called with the username of every credential revoked through this object; returns the unsubscribe. */
  onRevoke(cb: CredentialRevokeListener): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** A new credential; `password` exists only in the value returned. Every listed device must be registered. */
  async create(req: { name?: string; devices: "all" | string[]; access: MqttAccess }): Promise<NewMqttCredential> {
    if (req.devices !== "all") {
      const known = await this.db.query<{ id: string }>("SELECT id FROM devices WHERE id = ANY($1::text[])", [req.devices]);
      const ids = new Set(known.map((r) => r.id));
      const unknown = req.devices.filter((d) => !ids.has(d));
      if (unknown.length > 0) throw new RegistryError("bad-request", `devices: not registered: ${unknown.slice(0, 5).join(", ")}${unknown.length > 5 ? ", ..." : ""}`);
    }
    const password = newMqttPassword();
    const rows = await this.db.query<Row>(
      `INSERT INTO mqtt_credentials (username, name, password_hash, devices, access) VALUES ($1, $2, $3, $4::text[], $5) RETURNING ${COLUMNS}`,
      [`app-${randomBytes(6).toString("hex")}`, req.name ?? "", hashMqttPassword(password), req.devices === "all" ? null : req.devices, req.access],
    );
    return { credential: record(rows[0]), password };
  }

  async list(filter: { includeRevoked?: boolean } = {}): Promise<MqttCredential[]> {
    const rows = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM mqtt_credentials WHERE $1::boolean OR revoked_at IS NULL ORDER BY created_at, username`, [filter.includeRevoked ?? true],
    );
    return rows.map(record);
  }

  /** Revokes it (a second revoke changes nothing) and tells the listeners, so live clients go at once. */
  async revoke(username: string): Promise<MqttCredential> {
    const rows = await this.db.query<Row>(
      `UPDATE mqtt_credentials SET revoked_at = COALESCE(revoked_at, now()) WHERE username = $1 RETURNING ${COLUMNS}`, [username],
    );
    if (rows.length === 0) throw new RegistryError("not-found", `MQTT credential ${username} not found`);
    for (const l of this.listeners) l(username);
    return record(rows[0]);
  }

  /** The identity `username` with `password` is, or undefined (unknown, revoked, wrong password: the same time each). */
  async login(username: string, password: Uint8Array): Promise<MqttIdentity | undefined> {
    const rows = await this.db.query<Row & { password_hash: string }>(
      `SELECT ${COLUMNS}, password_hash FROM mqtt_credentials WHERE username = $1 AND revoked_at IS NULL`, [username],
    );
    const r = rows[0];
    const ok = verifyMqttPassword(password, r?.password_hash ?? NO_PASSWORD);
    if (!ok || r === undefined) return undefined;
    return { kind: "application", username: r.username, access: r.access, devices: r.devices === null ? "all" : new Set(r.devices) };
  }

  /** Which of `usernames` may no longer log in (revoked here, perhaps by another controller, or gone). */
  async revokedAmong(usernames: string[]): Promise<string[]> {
    if (usernames.length === 0) return [];
    const live = await this.db.query<{ username: string }>("SELECT username FROM mqtt_credentials WHERE username = ANY($1::text[]) AND revoked_at IS NULL", [usernames]);
    const ok = new Set(live.map((r) => r.username));
    return usernames.filter((u) => !ok.has(u));
  }

  /**
   * The live credentials as a Mosquitto 2.0 password file and the matching ACL sections, for a broker the
   * controller reaches with --mqtt-url. The controller's own user is the operator's to add (deploy/mosquitto/).
   */
  async mosquittoFiles(prefix = DEFAULT_PREFIX): Promise<{ passwordFile: string; aclFile: string }> {
    const rows = await this.db.query<Row & { password_hash: string }>(
      `SELECT ${COLUMNS}, password_hash FROM mqtt_credentials WHERE revoked_at IS NULL ORDER BY created_at, username`,
    );
    const passwords = rows.map((r) => `${r.username}:${r.password_hash}\n`);
    const acl = rows.map((r) => {
      const devices = r.devices === null ? ["+"] : r.devices;
      const lines = [`# ${r.name === "" ? "(no name)" : r.name}: ${r.access}, ${r.devices === null ? "all devices" : `${devices.length} device(s)`}`, `user ${r.username}`];
      for (const d of devices) {
        if (r.access !== "command") lines.push(`topic read ${prefix}/devices/${d}/up`, `topic read ${prefix}/devices/${d}/events`);
        if (r.access !== "read") lines.push(`topic write ${prefix}/devices/${d}/down`);
      }
      return lines.join("\n") + "\n";
    });
    return { passwordFile: passwords.join(""), aclFile: acl.join("\n") };
  }
}
