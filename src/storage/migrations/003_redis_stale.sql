-- Set when a write reached the transcript but not Redis (Redis down or its breaker open). When
-- Redis answers again those sessions' Redis buffers are dropped and rebuilt from the transcript,
-- even when Redis came back with its old data.
ALTER TABLE memory_sessions ADD COLUMN redis_stale boolean NOT NULL DEFAULT false;
CREATE INDEX memory_sessions_redis_stale ON memory_sessions (tenant, session_id) WHERE redis_stale;
