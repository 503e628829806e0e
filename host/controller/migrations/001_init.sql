-- The controller's durable metadata, one schema for PGlite and Postgres.

-- Master keys are never stored here: only their version and fingerprint, so a controller can tell which
-- key file a wrapped row needs and refuse to start with the wrong one.
CREATE TABLE master_keys (
  version     integer PRIMARY KEY CHECK (version > 0),
  fingerprint text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  retired_at  timestamptz
);

-- The responder's static X25519 key pair (dh mode): devices pin its public key; its secret is wrapped.
CREATE TABLE responder_keys (
  id             text PRIMARY KEY,
  public_key     bytea NOT NULL CHECK (length(public_key) = 32),
  wrapped_secret bytea NOT NULL,
  wrap_version   integer NOT NULL REFERENCES master_keys (version),
  created_at     timestamptz NOT NULL DEFAULT now(),
  retired_at     timestamptz
);

-- One row per device. dh: the kid and the device's static public key (its secret went to the board and is
-- not kept). psk: the device's key store {current, previous} wrapped by a master key, and the pseudonyms
-- (pid) those keys show on the wire, so a handshake finds its device by index.
CREATE TABLE devices (
  id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{8,64}$'),
  name         text NOT NULL DEFAULT '',
  board        text NOT NULL,
  mode         text NOT NULL CHECK (mode IN ('dh', 'psk')),
  kid          text CHECK (kid ~ '^[0-9a-f]{8}$'),
  public_key   bytea CHECK (length(public_key) = 32),
  wrapped_key  bytea,
  wrap_version integer REFERENCES master_keys (version),
  pid          text,
  pid_previous text,
  generation   integer NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT now(),
  rotated_at   timestamptz,
  revoked_at   timestamptz,
  CHECK ((mode = 'dh' AND kid IS NOT NULL AND public_key IS NOT NULL AND wrapped_key IS NULL)
      OR (mode = 'psk' AND kid IS NULL AND wrapped_key IS NOT NULL AND wrap_version IS NOT NULL AND pid IS NOT NULL))
);
-- A kid names one live device; a revoked device's kid may come back.
CREATE UNIQUE INDEX devices_live_kid ON devices (kid) WHERE revoked_at IS NULL AND kid IS NOT NULL;
CREATE INDEX devices_live_pid ON devices (pid) WHERE revoked_at IS NULL;
CREATE INDEX devices_live_pid_previous ON devices (pid_previous) WHERE revoked_at IS NULL;
CREATE INDEX devices_wrap_version ON devices (wrap_version);

-- Sessions as the gateways and the controller's responders report them.
CREATE TABLE sessions (
  id           bigserial PRIMARY KEY,
  device_id    text NOT NULL REFERENCES devices (id),
  spi          integer NOT NULL CHECK (spi >= 0 AND spi < 16777216),
  gateway      text NOT NULL,
  opened_at    timestamptz NOT NULL DEFAULT now(),
  closed_at    timestamptz,
  close_reason text
);
CREATE INDEX sessions_open ON sessions (device_id) WHERE closed_at IS NULL;
CREATE INDEX sessions_gateway_spi ON sessions (gateway, spi) WHERE closed_at IS NULL;

-- Every admin call, refused ones included. actor is a token id (never the token); detail holds no secrets.
CREATE TABLE audit (
  id      bigserial PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  actor   text,
  action  text NOT NULL,
  target  text,
  outcome text NOT NULL CHECK (outcome IN ('ok', 'denied', 'bad-request', 'not-found', 'rate-limited', 'error')),
  detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit (at);

-- Append-only in the database itself, not just in the code that writes it.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit log is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
