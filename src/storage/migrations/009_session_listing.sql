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

-- title: set by the caller (updateSession); default_title: the first user message, cut at a word
-- boundary to 64 characters; last_user_message: the newest user message, cut at 48 characters
-- (as the legacy listing did); user_id: the session's user.
ALTER TABLE memory_sessions
  ADD COLUMN title text,
  ADD COLUMN default_title text,
  ADD COLUMN last_user_message text,
  ADD COLUMN user_id text;

-- Sessions written before this migration get what their transcript says.
UPDATE memory_sessions s SET
  default_title = (
    SELECT memory_cut_words(memory_one_line(memory_message_text(m.message)), 64) FROM memory_messages m
    WHERE m.tenant = s.tenant AND m.session_id = s.session_id AND m.message ->> 'role' = 'user'
      AND memory_one_line(memory_message_text(m.message)) IS NOT NULL
    ORDER BY m.seq LIMIT 1
  ),
  last_user_message = (
    SELECT left(memory_one_line(memory_message_text(m.message)), 48) FROM memory_messages m
    WHERE m.tenant = s.tenant AND m.session_id = s.session_id AND m.message ->> 'role' = 'user'
      AND memory_one_line(memory_message_text(m.message)) IS NOT NULL
    ORDER BY m.seq DESC LIMIT 1
  );

-- Keyset pagination, newest first, in either order; ties broken by session id.
CREATE INDEX memory_sessions_by_created ON memory_sessions (tenant, created_at DESC, session_id DESC);
CREATE INDEX memory_sessions_by_updated ON memory_sessions (tenant, updated_at DESC, session_id DESC);
-- One user's sessions (listing filtered by user, erasing a user).
CREATE INDEX memory_sessions_by_user ON memory_sessions (tenant, user_id, created_at DESC, session_id DESC)
  WHERE user_id IS NOT NULL;
