-- Migration phase `coexistence`: every acknowledged write is also owed to the legacy session store
-- (swisper_sessions). It is recorded here first, in the system of record, and deleted once the
-- legacy store applied it, so a legacy outage or a crash loses none; `id` orders a session's
-- writes, which are applied oldest first.
CREATE TABLE memory_legacy_outbox (
  id bigserial PRIMARY KEY,
  session_id text NOT NULL,
  -- 'append' (payload: one legacy message), 'context' (payload: the contract context) or 'erase'.
  kind text NOT NULL CHECK (kind IN ('append', 'context', 'erase')),
  payload jsonb NOT NULL DEFAULT 'null',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX memory_legacy_outbox_session ON memory_legacy_outbox (session_id, id);
