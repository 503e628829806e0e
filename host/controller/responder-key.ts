// The responder's static X25519 key pair: dh devices pin its public key in their configuration, and
// whoever answers their handshakes (the gateway in terminate mode, the controller in relay mode) needs its
// secret. Made on first use, its secret wrapped by the master key like every long-term key.
import { nodeKeyPair } from "../crypto/provider";
import type { Db } from "./db/db";
import { bytes } from "./db/db";
import { StaleVersionError, type Keyring } from "./keyring";

export type ResponderKey = { id: string; publicKey: Uint8Array; secret: Uint8Array };

export const DEFAULT_RESPONDER = "default";

/** The public key only (what provisioning pins); creates the key pair if there is none yet. */
export async function responderPublicKey(db: Db, ring: Keyring, id = DEFAULT_RESPONDER): Promise<Uint8Array> {
  const rows = await db.query<{ public_key: unknown }>("SELECT public_key FROM responder_keys WHERE id = $1", [id]);
  if (rows.length > 0) return bytes(rows[0].public_key);
  return (await create(db, ring, id)).publicKey;
}

/** The key pair with its secret unwrapped, for a handshake responder. Creates it if there is none yet. */
export async function responderKey(db: Db, ring: Keyring, id = DEFAULT_RESPONDER): Promise<ResponderKey> {
  for (let attempt = 0; ; attempt++) {
    const rows = await db.query<{ public_key: unknown; wrapped_secret: unknown; wrap_version: number }>(
      "SELECT public_key, wrapped_secret, wrap_version FROM responder_keys WHERE id = $1", [id]);
    if (rows.length === 0) return create(db, ring, id);
    try {
      const secret = ring.unwrap("responder", id, { wrapped: bytes(rows[0].wrapped_secret), version: rows[0].wrap_version });
      return { id, publicKey: bytes(rows[0].public_key), secret };
    } catch (e) {
      // Re-wrapped by a rotation between the read and the unwrap: read again.
      if (!(e instanceof StaleVersionError) || attempt > 2) throw e;
    }
  }
}

async function create(db: Db, ring: Keyring, id: string): Promise<ResponderKey> {
  const kp = nodeKeyPair();
  await db.transaction((tx) =>
    ring.wrapForWrite(tx, "responder", id, kp.s, (w) =>
      tx.query(
        `INSERT INTO responder_keys (id, public_key, wrapped_secret, wrap_version) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING`,
        [id, kp.S, w.wrapped, w.version],
      ),
    ),
  );
  // Two controllers may race to create it: whichever row landed is the key.
  return responderKey(db, ring, id);
}
