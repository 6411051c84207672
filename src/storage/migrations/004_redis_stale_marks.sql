-- Marks of sessions whose Redis copy must be dropped before Redis serves them again, in a table of
-- their own: a mark must outlive an erase of the session (an erase whose last Redis step failed
-- leaves one), which a column of memory_sessions cannot.
CREATE TABLE memory_redis_stale (
  tenant      text        NOT NULL,
  session_id  text        NOT NULL,
  marked_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, session_id)
);
INSERT INTO memory_redis_stale (tenant, session_id)
  SELECT tenant, session_id FROM memory_sessions WHERE redis_stale;
DROP INDEX memory_sessions_redis_stale;
ALTER TABLE memory_sessions DROP COLUMN redis_stale;
