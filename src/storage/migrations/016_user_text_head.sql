-- The start of a user message's text on one line, for the session listing: the append statement
-- keeps only a title (memory_title: 64 characters, cut at a word) and a preview (memory_preview:
-- 48) of a user message, yet it made the whole text one line (memory_user_text), a regexp over
-- every character: 25 µs of a 35 µs call for 280 characters, twice an append, and growing with
-- the text (a pasted document of 100 kB). This makes the first 80 characters one line, and when
-- that gives fewer than 65 (whitespace runs collapsed), four times as many, until it has 65 or
-- the whole text: a 280-character message costs half, a 10 kB one a fifth.
--
-- Sound because making a text one line is prefix-preserving: runs of whitespace become one space
-- wherever the text is cut, and trimming only removes what the whole text's line may continue
-- after, so memory_one_line(left(t, k)) is always a start of memory_one_line(t). Given 65 of its
-- characters, memory_title and memory_preview answer what they answer for the whole line (both
-- read at most its first 65 characters and know it is longer than 64). A test holds this to
-- memory_title(memory_user_text(m)) and memory_preview(memory_user_text(m)) for every shape of
-- message. Null exactly when memory_user_text is null.
CREATE FUNCTION memory_user_head(message json) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  full_text text;
  head text;
  chars integer := 80;
BEGIN
  IF memory_text_json(message) ->> 'role' IS DISTINCT FROM 'user' THEN
    RETURN NULL;
  END IF;
  full_text := memory_message_text(message);
  LOOP
    head := memory_one_line(left(full_text, chars));
    -- A null text ends here too: length(null) is null, and so is the whole condition but for
    -- `full_text IS NULL`.
    IF full_text IS NULL OR length(full_text) <= chars OR length(head) >= 65 THEN
      RETURN head;
    END IF;
    chars := chars * 4;
  END LOOP;
END
$$;
