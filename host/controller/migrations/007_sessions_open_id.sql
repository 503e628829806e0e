-- The open sessions in the order of their ids (host/controller/sessions.ts, listOpen: the console's fleet view
-- reads them a page at a time, newest first), each page a short scan of this index; without it each page
-- sorted every open session.
CREATE INDEX sessions_open_id ON sessions (id) WHERE closed_at IS NULL;
