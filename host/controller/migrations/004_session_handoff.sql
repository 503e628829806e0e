-- Device sessions handed over by terminate gateways (docs/PROTOCOL.md 3.8, host/controller/session-store.ts):
-- one row per session (device and the SPI its records carry), held by one gateway at a time. The session's
-- saved form (traffic secrets, key indices, SPIs) is wrapped by a master key like every other key here; the
-- sequence top (every number below it may have been used under key out_index) and the replay top are not
-- secret. A gateway that resumes a row becomes its holder and moves seq_top on past what it may use.
CREATE TABLE device_sessions (
  id            text PRIMARY KEY,
  device        text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  spi           integer NOT NULL CHECK (spi > 0 AND spi <= 16777215),
  holder        text NOT NULL,
  out_index     integer NOT NULL CHECK (out_index >= 0),
  seq_top       bigint NOT NULL CHECK (seq_top >= 0),
  rx_top        bigint NOT NULL,
  wrapped_state bytea NOT NULL,
  wrap_version  integer NOT NULL REFERENCES master_keys (version),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_sessions_spi ON device_sessions (spi);
CREATE INDEX device_sessions_device ON device_sessions (device);
CREATE INDEX device_sessions_wrap_version ON device_sessions (wrap_version);
