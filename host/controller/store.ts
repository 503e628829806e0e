// Everything durable the controller holds, opened in one call: the database (migrated), the master keys
// (checked against it; a rotation interrupted by a stop is finished), the device registry, the session log,
// the audit log and the MQTT credentials. The gateway, the CLI and the admin API take what they need from here.
import type { Db } from "./db/db";
import { openDb, type DbOptions } from "./db/open";
import { AuditLog } from "./audit";
import { loadBoards, type Boards } from "./boards";
import { loadMasterKeys, MasterKeyDir, type MasterKeySources } from "./keydir";
import { Keyring } from "./keyring";
import type { MasterKey } from "./masterkey";
import { MqttCredentials } from "./mqtt-credentials";
import { Registry } from "./registry";
import { finishRotation, recordMasterKey, refuseKnownKey, type RotationOptions, type RotationResult, type RotationStep } from "./rotation";
import { SessionLog } from "./sessions";
import { silentLogger, type Logger } from "../telemetry/log";

export type StoreOptions = {
  db: DbOptions;
  /** Where the master keys come from; or the keys themselves (tests). */
  masterKeys: MasterKeySources | MasterKey[];
  /** boards/*.json by default. */
  boards?: Boards;
  /** Rotation steps (info), state found too open (warn), pending key files ignored (warn). */
  log?: Logger;
  /** Rows per re-wrap transaction, and a pause after each step of a rotation (ms) to leave the database room. */
  rotation?: { batchSize?: number; pauseMs?: number };
};

export type ControllerStore = {
  db: Db;
  keyring: Keyring;
  registry: Registry;
  sessions: SessionLog;
  audit: AuditLog;
  /** Application credentials for MQTT (./mqtt-credentials.ts). */
  mqtt: MqttCredentials;
  /** Where a rotation's new key is kept (keydir.ts); undefined when the keys come from elsewhere. */
  masterKeyDir?: string;
  rotateMasterKey(key: MasterKey, opts?: RotationOptions): Promise<RotationResult>;
  close(): Promise<void>;
};

export async function openControllerStore(opts: StoreOptions): Promise<ControllerStore> {
  const log = opts.log ?? silentLogger();
  const sources = Array.isArray(opts.masterKeys) ? undefined : opts.masterKeys;
  const dir = sources?.dir === undefined ? undefined : new MasterKeyDir(sources.dir);
  const found = sources === undefined ? { keys: opts.masterKeys as MasterKey[], pending: [], tightened: [] } : loadMasterKeys(sources);
  for (const file of found.tightened) log.warn("master key file or directory was open to other users; now owner-only: if others could read it, rotate the master key", { file });
  const boards = opts.boards ?? loadBoards();
  const onTightened = (dataDir: string, entries: number) =>
    log.warn("database files were open to other users; now owner-only (0700/0600)", { dir: dataDir, entries });
  const db = await openDb({ onTightened, ...opts.db });
  try {
    const { ring: keyring, recorded } = await Keyring.open(db, found.keys, found.pending);
    // Recorded before the process that staged them could rename them (keydir.ts): keys now.
    for (const k of recorded) dir!.promote(k.fingerprint);
    for (const k of found.pending) {
      if (!recorded.includes(k)) log.warn("pending master key file ignored: this database never recorded it (a rotation stopped before it began); delete it once no database needs it", { file: dir!.pendingFile(k.fingerprint) });
    }
    const onStep = async (step: RotationStep, facts: Record<string, unknown>, pause: boolean) => {
      log.info("master-key rotation", { step, ...facts });
      if (pause && (opts.rotation?.pauseMs ?? 0) > 0) await new Promise((r) => setTimeout(r, opts.rotation!.pauseMs));
    };
    const batchSize = opts.rotation?.batchSize;
    if (keyring.versions().length > 1) await finishRotation(db, keyring, { batchSize, onStep: (s, f) => onStep(s, f, false) });

    /** Stage the key file, record the version, make the file a key file, then re-wrap and retire (keydir.ts). */
    const rotate = async (key: MasterKey, ropts: RotationOptions = {}): Promise<RotationResult> => {
      const step = ropts.onStep ?? ((s: RotationStep, f: Record<string, unknown>) => onStep(s, f, true));
      const fingerprint = key.fingerprint;
      await refuseKnownKey(db, key);
      if (dir !== undefined) await step("staged", { fingerprint, file: dir.stage(key) });
      const version = await recordMasterKey(db, key);
      await step("recorded", { version, fingerprint });
      const keyFile = dir?.promote(fingerprint);
      keyring.addActive(version, key);
      const done = await finishRotation(db, keyring, { batchSize: ropts.batchSize ?? batchSize, onStep: step });
      return { version, fingerprint, ...done, keyFile };
    };
    // One rotation at a time in this process: a second waits for the first.
    let rotating: Promise<unknown> = Promise.resolve();
    return {
      db, keyring,
      registry: new Registry(db, keyring, boards),
      sessions: new SessionLog(db),
      audit: new AuditLog(db),
      mqtt: new MqttCredentials(db),
      masterKeyDir: dir?.path,
      rotateMasterKey(key, ropts) {
        const run = rotating.catch(() => {}).then(() => rotate(key, ropts));
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
