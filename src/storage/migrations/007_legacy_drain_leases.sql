-- Which process applies a session's queued legacy writes (memory_legacy_outbox) right now. Two
-- service instances applying the same session's queue would apply entries twice or out of order;
-- a drain first takes the session's lease, and a lease whose holder died expires.
CREATE TABLE memory_legacy_drain_leases (
  session_id text PRIMARY KEY,
  owner text NOT NULL,
  expires_at timestamptz NOT NULL
);
