-- Free metadata per session (updateSession, PATCH /v1/sessions/{id}): a JSON object, at most
-- 16 KiB as JSON (checked by the library).
ALTER TABLE memory_sessions ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;
