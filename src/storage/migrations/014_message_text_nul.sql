-- A message may hold U+0000 (the transcript keeps it), but PostgreSQL's text cannot: every json
-- operator (->, ->>, json_typeof of a member) refuses a document with a "\u0000" escape in it.
-- The functions of migration 009 used them, so the append statement (title, preview) and the
-- search index failed on such a message, and the write with them. What is read from a message in
-- SQL now goes through memory_text_json: the message without its \u0000 escapes (the stored
-- message keeps them). An escape is one only after an even number of backslashes ("\\u0000" is a
-- backslash and "u0000"). Other messages read exactly as before, so the indexes calling these
-- functions hold nothing stale.
CREATE FUNCTION memory_text_json(message json) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN strpos(message::text, '\u0000') = 0 THEN message
    ELSE regexp_replace(message::text, '(?<!\\)((?:\\\\)*)\\u0000', '\1', 'g')::json
  END
$$;

CREATE OR REPLACE FUNCTION memory_message_text(message json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE json_typeof(safe -> 'content')
    WHEN 'string' THEN safe ->> 'content'
    WHEN 'array' THEN (
      SELECT string_agg(part ->> 'text', ' ')
      FROM json_array_elements(safe -> 'content') AS part
      WHERE part ->> 'type' = 'text'
    )
  END
  FROM (SELECT memory_text_json(message) AS safe) AS cleaned
$$;

CREATE OR REPLACE FUNCTION memory_user_text(message json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN memory_text_json(message) ->> 'role' = 'user'
    THEN memory_one_line(memory_message_text(message)) END
$$;
