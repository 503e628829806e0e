// Registry rows given the change stamps a test or bench wants (devices.changed_at, migrations/005): the trigger
// that stamps every update with its own time is off while `sql` runs, so the rows keep the stamps `sql` sets.
import type { Db } from "../../host/controller/db/db";

export async function restamp(db: Db, sql: string): Promise<void> {
  await db.exec(`ALTER TABLE devices DISABLE TRIGGER devices_changed; ${sql}; ALTER TABLE devices ENABLE TRIGGER devices_changed`);
}
