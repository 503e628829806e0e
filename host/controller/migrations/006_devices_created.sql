-- The registry's order (created first, first) as an index: a whole read of the registry goes a page at a
-- time along it (host/controller/registry.ts, list()), each page a short range scan. Without it each page
-- sorted the whole table, and one query for everything kept an embedded controller (PGlite runs in its own
-- thread) from doing anything else for 0.7-1.0 s at 50,000 devices.
CREATE INDEX devices_created ON devices (created_at, id);
