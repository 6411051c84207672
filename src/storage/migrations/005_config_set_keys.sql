-- Which keys of a session's config the caller set: the others follow them (keep_recent_tokens is
-- half the trigger, and so on), also when the caller later changes a key. Configs stored before
-- count every stored key as set.
ALTER TABLE memory_session_configs ADD COLUMN set_keys text[] NOT NULL DEFAULT '{}';
UPDATE memory_session_configs SET set_keys = ARRAY(SELECT jsonb_object_keys(config));
