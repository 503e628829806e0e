-- Application credentials for MQTT: who may read a device's readings and events, and who may send it
-- commands. The password is kept only as its hash, in Mosquitto's own "$7$" format (PBKDF2-SHA512), so the
-- same rows can be exported as a Mosquitto password file. devices NULL means every device, present and
-- future; otherwise the device ids the credential is scoped to.
CREATE TABLE mqtt_credentials (
  username      text PRIMARY KEY CHECK (username ~ '^app-[0-9a-f]{12}$'),
  name          text NOT NULL DEFAULT '',
  password_hash text NOT NULL CHECK (password_hash LIKE '$7$%'),
  devices       text[],
  access        text NOT NULL CHECK (access IN ('read', 'command', 'both')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz
);
