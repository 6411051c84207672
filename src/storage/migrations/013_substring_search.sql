-- Substring search (searchMessages mode substring, the legacy store's ILIKE '%q%'): a trigram
-- index over each message's text where the pg_trgm extension can be created. Creating it needs
-- the extension to be installed on the server and the right to create it; where either is
-- missing, nothing is created and substring search reads a bounded number of messages instead
-- (it says so: scan_limited). The embedded database loads pg_trgm, so it gets the index.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE 'pg_trgm cannot be created here (%): substring search scans a bounded number of messages', SQLERRM;
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    -- The query repeats this expression exactly, so that it reads this index.
    CREATE INDEX memory_messages_substring ON memory_messages
      USING gin (memory_message_text(message) gin_trgm_ops);
  END IF;
END
$$;
