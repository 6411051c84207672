-- The system of record. Every key starts with the tenant, so no query can cross tenants by
-- leaving it out.

-- One row per session: the next transcript position. Locking this row serialises the writers of
-- one session, so seq order is commit order and seqs have no holes.
CREATE TABLE memory_sessions (
  tenant      text        NOT NULL,
  session_id  text        NOT NULL,
  next_seq    bigint      NOT NULL,
  -- clearBuffer moves this up to the last seq: older messages leave the buffer (not the
  -- transcript) and are summarized from the transcript like any capped-out message.
  buffer_floor_seq bigint   NOT NULL DEFAULT 0,
  -- New on every (re)creation: a summary job started before clearSessionMemory must not commit
  -- into the session that reuses the id.
  generation  uuid        NOT NULL DEFAULT gen_random_uuid(),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, session_id)
);

-- The whole transcript: every acknowledged message, in order.
CREATE TABLE memory_messages (
  tenant            text        NOT NULL,
  session_id        text        NOT NULL,
  seq               bigint      NOT NULL,
  idempotency_key   text,
  -- json, not jsonb: kept as sent (key order, and \u0000, which jsonb rejects).
  message           json        NOT NULL,
  tokens            integer     NOT NULL,
  tokens_estimated  boolean     NOT NULL DEFAULT false,
  created_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, session_id, seq)
);

CREATE UNIQUE INDEX memory_messages_idempotency_key
  ON memory_messages (tenant, session_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- Every summary version, each covering the exact transcript range [first_seq, last_seq].
CREATE TABLE memory_summaries (
  tenant         text        NOT NULL,
  session_id     text        NOT NULL,
  version        integer     NOT NULL,
  summary_text   text        NOT NULL,
  first_seq      bigint      NOT NULL,
  last_seq       bigint      NOT NULL,
  tokens         integer     NOT NULL,
  fencing_token  bigint,
  metadata       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, session_id, version),
  CHECK (first_seq <= last_seq + 1)
);

CREATE TABLE memory_session_configs (
  tenant      text        NOT NULL,
  session_id  text        NOT NULL,
  config      jsonb       NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, session_id)
);

-- Saved SwisperContext snapshots: application state, never part of the LLM buffer.
CREATE TABLE memory_context_snapshots (
  tenant      text        NOT NULL,
  session_id  text        NOT NULL,
  context     json        NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, session_id)
);
