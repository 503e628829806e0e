-- The registry read a page at a time (host/controller/registry.ts: list(), changedSince()), each page a short
-- range scan along its order: (created_at, id) for a whole read, (changed_at, id) for the rows changed since a
-- time. One query for everything kept an embedded controller (PGlite runs in its own thread) from doing
-- anything else for 0.8-1.0 s at 50,000 devices, and without these indexes each page sorted the whole table.
CREATE INDEX devices_created ON devices (created_at, id);
DROP INDEX devices_changed_at;
CREATE INDEX devices_changed ON devices (changed_at, id);
