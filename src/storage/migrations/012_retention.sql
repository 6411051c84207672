-- Retention (the sweeper in sessions/retention.ts): sessions idle longer than their retention are
-- erased, oldest first, a small batch at a time.

-- The idle time of every session, across tenants: the sweeper reads the range older than the
-- shortest retention in use, in this order, and never the sessions written since. On the UTC
-- time rather than updated_at itself, so that a tenant's listing (ORDER BY updated_at) is never
-- planned on it: scanning every tenant's sessions for one tenant's page looks cheap to the
-- planner while one tenant holds most sessions, and a plan is kept per connection.
CREATE INDEX memory_sessions_by_idle ON memory_sessions ((updated_at AT TIME ZONE 'UTC'), tenant, session_id);

-- The shortest retention a session asked for (its config key retention_days, kept only when set):
-- one index read, so a sweep with no retention anywhere reads nothing else.
CREATE INDEX memory_session_configs_by_retention
  ON memory_session_configs (((config ->> 'retention_days')::integer))
  WHERE config ? 'retention_days';

-- One sweeper at a time across processes: a lease row, not an advisory lock, because a session
-- lock needs a connection held for the whole sweep (the embedded database has only one) and a
-- transaction lock would hold a transaction open across Redis calls. Expiry is on the database's
-- clock, so the processes' clocks need not agree.
CREATE TABLE memory_retention_lease (
  name        text        PRIMARY KEY,
  holder      text        NOT NULL,
  expires_at  timestamptz NOT NULL
);
