-- Sessions as data (listing): what a listing shows of each session is kept on its row, which every
-- append already updates (next_seq, updated_at) in the same statement, so a listing page reads
-- `limit` rows of one index and nothing else.

-- The text of a message's content: the string, or the text parts of an array joined by spaces;
-- null for a message without text (an assistant's tool calls).
CREATE FUNCTION memory_message_text(message json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE json_typeof(message -> 'content')
    WHEN 'string' THEN message ->> 'content'
    WHEN 'array' THEN (
      SELECT string_agg(part ->> 'text', ' ')
      FROM json_array_elements(message -> 'content') AS part
      WHERE part ->> 'type' = 'text'
    )
  END
$$;

-- Text on one line: runs of whitespace become one space, trimmed; null when nothing is left.
CREATE FUNCTION memory_one_line(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT nullif(btrim(regexp_replace(value, '\s+', ' ', 'g')), '')
$$;

-- At most max_chars characters, cut at the last word boundary that fits (mid-word only when the
-- first word alone is longer).
CREATE FUNCTION memory_cut_words(value text, max_chars integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN value IS NULL OR length(value) <= max_chars THEN value
    ELSE coalesce(nullif(rtrim(substring(left(value, max_chars + 1) FROM '^(.*)\s')), ''), left(value, max_chars))
  END
$$;

-- What the listing shows of a user message: its text on one line (null for any other role, or
-- none); the title it gives (cut at a word boundary to 64 characters); its preview (cut at 48
-- characters, as the legacy listing did). The append statement and the backfill below use these.
CREATE FUNCTION memory_user_text(message json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN message ->> 'role' = 'user' THEN memory_one_line(memory_message_text(message)) END
$$;

CREATE FUNCTION memory_title(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT memory_cut_words(value, 64)
$$;

CREATE FUNCTION memory_preview(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT left(value, 48)
$$;

-- title: set by the caller (updateSession); default_title: the title of the first user message;
-- last_user_message: the preview of the newest one; user_id: the session's user.
ALTER TABLE memory_sessions
  ADD COLUMN title text,
  ADD COLUMN default_title text,
  ADD COLUMN last_user_message text,
  ADD COLUMN user_id text;

-- Sessions written before this migration get what their transcript says. (No literal in this
-- statement: it is found in this file by its text, constants included.)
UPDATE memory_sessions s SET
  default_title = memory_title((
    SELECT memory_user_text(m.message) FROM memory_messages m
    WHERE m.tenant = s.tenant AND m.session_id = s.session_id
      AND m.seq = (SELECT min(f.seq) FROM memory_messages f
                   WHERE f.tenant = s.tenant AND f.session_id = s.session_id
                     AND memory_user_text(f.message) IS NOT NULL)
  )),
  last_user_message = memory_preview((
    SELECT memory_user_text(m.message) FROM memory_messages m
    WHERE m.tenant = s.tenant AND m.session_id = s.session_id
      AND m.seq = (SELECT max(f.seq) FROM memory_messages f
                   WHERE f.tenant = s.tenant AND f.session_id = s.session_id
                     AND memory_user_text(f.message) IS NOT NULL)
  ));

-- Keyset pagination, newest first, in either order; ties broken by session id.
CREATE INDEX memory_sessions_by_created ON memory_sessions (tenant, created_at DESC, session_id DESC);
CREATE INDEX memory_sessions_by_updated ON memory_sessions (tenant, updated_at DESC, session_id DESC);
-- One user's sessions (listing filtered by user, erasing a user).
CREATE INDEX memory_sessions_by_user ON memory_sessions (tenant, user_id, created_at DESC, session_id DESC)
  WHERE user_id IS NOT NULL;
