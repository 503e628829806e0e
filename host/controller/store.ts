// Everything durable the controller holds, opened in one call: the database (migrated), the master keys
// (checked against it; a rotation interrupted by a stop is finished), the device registry, the session log,
// the audit log and the MQTT credentials. The gateway, the CLI and the admin API take what they need from here.
import type { Db } from "./db/db";
import { openDb, type DbOptions } from "./db/open";
import { AuditLog } from "./audit";
import { loadBoards, type Boards } from "./boards";
import { Keyring } from "./keyring";
import { loadMasterKeys, MasterKey, type MasterKeySources } from "./masterkey";
import { MqttCredentials } from "./mqtt-credentials";
import { Registry } from "./registry";
import { finishRotation, rotateMasterKey, type RotationOptions, type RotationResult } from "./rotation";
import { SessionLog } from "./sessions";

export type StoreOptions = {
  db: DbOptions;
  /** Where the master keys come from; or the keys themselves (tests). */
  masterKeys: MasterKeySources | MasterKey[];
  /** boards/*.json by default. */
  boards?: Boards;
};

export type ControllerStore = {
  db: Db;
  keyring: Keyring;
  registry: Registry;
  sessions: SessionLog;
  audit: AuditLog;
  /** Application credentials for MQTT (./mqtt-credentials.ts). */
  mqtt: MqttCredentials;
  rotateMasterKey(key: MasterKey, opts?: RotationOptions): Promise<RotationResult>;
  close(): Promise<void>;
};

export async function openControllerStore(opts: StoreOptions): Promise<ControllerStore> {
  const keys = Array.isArray(opts.masterKeys) ? opts.masterKeys : loadMasterKeys(opts.masterKeys);
  const boards = opts.boards ?? loadBoards();
  const db = await openDb(opts.db);
  try {
    const keyring = await Keyring.open(db, keys);
    if (keyring.versions().length > 1) await finishRotation(db, keyring);
    // One rotation at a time in this process: a second waits for the first.
    let rotating: Promise<unknown> = Promise.resolve();
    return {
      db, keyring,
      registry: new Registry(db, keyring, boards),
      sessions: new SessionLog(db),
      audit: new AuditLog(db),
      mqtt: new MqttCredentials(db),
      rotateMasterKey(key, ropts) {
        const run = rotating.catch(() => {}).then(() => rotateMasterKey(db, keyring, key, ropts));
        rotating = run;
        return run;
      },
      close: () => db.close(),
    };
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
}
