-- Full-text search over the transcript (searchMessages, GET /v1/search): the words of each
-- message's text under the `simple` configuration (lower-cased, no stemming, no stop words), so
-- that every language and script is matched by its words. The query repeats this expression
-- exactly, so that it reads this index.
CREATE INDEX memory_messages_search ON memory_messages
  USING gin (to_tsvector('simple'::regconfig, coalesce(memory_message_text(message), '')));
