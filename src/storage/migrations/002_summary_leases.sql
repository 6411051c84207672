-- The summarizer lease of each session when there is no Redis. A row outlives its lease so that
-- fencing tokens only grow.
CREATE TABLE memory_summary_leases (
  tenant      text        NOT NULL,
  session_id  text        NOT NULL,
  token       bigint      NOT NULL,
  holder      text        NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant, session_id)
);
