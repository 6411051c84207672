-- The Redis shard lists (REDIS_URLS) the deployment has run with, numbered. A session's Redis keys
-- name the epoch since which its shard has been its home without a break, so that a session that
-- moves to another shard and back never reads the keys its old shard kept (src/storage/redis-shards.ts).
CREATE TABLE memory_redis_topologies (
  epoch serial PRIMARY KEY,
  shards text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
