-- Several controllers on one Postgres (docs/CONTROLLER.md, "Cluster"): what one controller used to hold in its
-- memory. Times that leases compare are the database's own (now()), so controllers never compare clocks.

-- Each controller run, and when it last said it was alive: its claims on readings (below) last while its
-- heartbeat is younger than its lease, so a live controller renews all of them with one statement.
CREATE TABLE controllers (
  id           text PRIMARY KEY,
  lease_ms     integer NOT NULL CHECK (lease_ms > 0),
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Readings on their way from the backbone to MQTT, keyed by what names a reading for good: its device and
-- the device's message id. A controller inserts a batch at once (ON CONFLICT DO NOTHING: a copy resent by a
-- gateway that failed over, or by a device that missed its ACK, finds its row and is not published again),
-- acknowledges the batch to the gateway once committed, and publishes the rows it inserted under its claim;
-- a row whose claimer stopped beating (it died) or that was released (its broker refused it) is claimed by
-- another. Published rows stay for the dedup window, then are pruned.
CREATE TABLE outbox (
  device       text NOT NULL,
  msg_id       integer NOT NULL CHECK (msg_id >= 0 AND msg_id <= 16777215),
  gateway      text NOT NULL,
  mode         text NOT NULL CHECK (mode IN ('terminate', 'relay')),
  body         bytea NOT NULL,
  received_ms  bigint NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  claimed_by   text,
  published_at timestamptz,
  PRIMARY KEY (device, msg_id)
);
CREATE INDEX outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (created_at) WHERE published_at IS NOT NULL;

-- Commands from MQTT, stored by the controller that took one before the broker gets its PUBACK. The id is
-- the device's next number (command_counters), the one its receiver window filters copies by: a command sent
-- again, by another gateway or after its gateway restarted, runs once. Closed when a gateway reports the
-- device's ACK (acked) or gives up (lost), or when it is too old (expired).
--   open     stored, not yet handed to a gateway
--   sent     handed to the gateway (and its run) in sent_to
--   waiting  that gateway had no session for the device: sent again when the device is next heard
CREATE TABLE command_counters (
  device text PRIMARY KEY REFERENCES devices (id),
  next   integer NOT NULL CHECK (next >= 0 AND next <= 16777216)
);
CREATE TABLE commands (
  device     text NOT NULL REFERENCES devices (id),
  id         integer NOT NULL CHECK (id >= 0 AND id <= 16777215),
  payload    bytea NOT NULL,
  state      text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'sent', 'waiting', 'acked', 'lost', 'expired')),
  taken_by   text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_to    text,
  sent_at    timestamptz,
  closed_at  timestamptz,
  PRIMARY KEY (device, id),
  CHECK ((closed_at IS NULL) = (state IN ('open', 'sent', 'waiting')))
);
CREATE INDEX commands_unclosed ON commands (device) WHERE closed_at IS NULL;
CREATE INDEX commands_closed ON commands (closed_at) WHERE closed_at IS NOT NULL;

-- Where each device was last heard: the gateway (its kid) and that gateway's run (a restarted gateway is a
-- new run, which holds none of the device's sessions or commands), the link on it when known (relay mode),
-- and the controller that heard it (in relay mode the one holding the device's session). Written when it
-- changes, refreshed at most every few seconds, never per reading.
CREATE TABLE routes (
  device      text PRIMARY KEY,
  gateway     text NOT NULL,
  gateway_run text NOT NULL,
  link        text,
  controller  text NOT NULL,
  heard_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX routes_gateway ON routes (gateway);
CREATE INDEX routes_heard ON routes (heard_at);

-- Which controller serves which gateway: written when the gateway connects, renewed while it stays, deleted
-- when it leaves; a row whose lease ran out belongs to a controller that died.
CREATE TABLE gateway_leases (
  gateway     text PRIMARY KEY,
  controller  text NOT NULL,
  gateway_run text NOT NULL,
  mode        text NOT NULL CHECK (mode IN ('terminate', 'relay')),
  since       timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz NOT NULL
);

-- The public half of the backbone key pair every controller of the cluster holds (gateways pin it), recorded
-- by the first controller: one started with another key file would be a controller no gateway can reach,
-- so it refuses to start instead.
CREATE TABLE backbone_key (
  only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  public_key bytea NOT NULL CHECK (length(public_key) = 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
