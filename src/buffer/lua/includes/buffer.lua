-- Shared helpers of the buffer scripts.
--
-- A buffer entry is "<seq>:<tokens>:<estimated 0|1>:<message json>", so that the scripts can keep
-- the running totals without decoding JSON.

local function entry_header(entry)
  local seq, tokens, estimated = string.match(entry, "^(%d+):(%d+):([01]):")
  return tonumber(seq), tonumber(tokens), tonumber(estimated)
end

-- The session's config: the overrides cached in the config hash over the defaults given by the
-- caller. Returns nil when the config hash is missing (not cached yet, or expired).
local function read_config(config_key, defaults)
  local flat = redis.call("HGETALL", config_key)
  if #flat == 0 then return nil end
  local config = {}
  for name, value in pairs(defaults) do config[name] = value end
  for i = 1, #flat, 2 do
    if flat[i] ~= "_loaded" then config[flat[i]] = tonumber(flat[i + 1]) end
  end
  return config
end

-- Caches the overrides read from the system of record (a JSON object of numbers).
local function install_config(config_key, overrides_json)
  local fields = { "_loaded", "1" }
  for name, value in pairs(cjson.decode(overrides_json)) do
    fields[#fields + 1] = name
    fields[#fields + 1] = tostring(value)
  end
  redis.call("HSET", config_key, unpack(fields))
end

-- Pushes the oldest entries out until the buffer is within both caps (the newest entry always
-- stays). They remain in the transcript. Returns the new count, tokens and estimated count.
local function enforce_caps(buffer_key, count, tokens, estimated, max_messages, max_tokens)
  while count > max_messages or (tokens > max_tokens and count > 1) do
    local entry = redis.call("LPOP", buffer_key)
    local _, entry_tokens, entry_estimated = entry_header(entry)
    count = count - 1
    tokens = tokens - entry_tokens
    estimated = estimated - entry_estimated
  end
  return count, tokens, estimated
end

local function first_seq_of(buffer_key)
  local head = redis.call("LINDEX", buffer_key, 0)
  if not head then return 0 end
  local seq = entry_header(head)
  return seq
end

local function expire_all(ttl_seconds, keys)
  for _, key in ipairs(keys) do redis.call("EXPIRE", key, ttl_seconds) end
end

-- The session defaults the append scripts take in ARGV[2..5].
local function argv_defaults()
  return {
    buffer_ttl_seconds = tonumber(ARGV[2]),
    max_buffer_messages = tonumber(ARGV[3]),
    max_buffer_tokens = tonumber(ARGV[4]),
    summary_trigger_tokens = tonumber(ARGV[5]),
  }
end

-- Pushes entries ("<seq>:<tokens>:<estimated>:<json>", in seq order, the last one last_seq) onto
-- a proven buffer, keeps the caps, records the totals and renews the TTL. Returns the "ok" reply.
local function push_entries(keys, state, config, entries, last_seq, now)
  local count, tokens, estimated = state.count, state.tokens, state.estimated
  for _, entry in ipairs(entries) do
    local _, entry_tokens, entry_estimated = entry_header(entry)
    redis.call("RPUSH", keys.buffer, entry)
    count = count + 1
    tokens = tokens + entry_tokens
    estimated = estimated + entry_estimated
  end
  count, tokens, estimated = enforce_caps(keys.buffer, count, tokens, estimated,
    config.max_buffer_messages, config.max_buffer_tokens)
  local first_seq = first_seq_of(keys.buffer)
  redis.call("HSET", keys.meta, "message_count", count, "total_tokens", tokens, "estimated_count", estimated,
    "first_seq", first_seq, "last_seq", last_seq, "last_updated", now)
  expire_all(config.buffer_ttl_seconds, { keys.buffer, keys.meta, keys.config })
  return { "ok", count, tokens, first_seq, last_seq, config.summary_trigger_tokens, state.covered_seq,
    config.max_buffer_messages }
end

-- The run id of this Redis server process. A buffer records the run id it was built under: one
-- found under another (a restart from an old snapshot, a failover to a replica that may lag) is
-- not proven current and is rebuilt from the transcript.
local function run_id()
  return string.match(redis.call("INFO", "server"), "run_id:(%x+)")
end

-- The session's buffer state when it is whole and proven: the meta hash built under this run id,
-- the list holding exactly the entries the meta counts, and the config cached. Anything less (a
-- key evicted, expired or lost, an older server's copy) returns nil: the caller treats the session
-- as not in Redis and it is rebuilt from the transcript. On a replica, `rid` is the primary's run
-- id, which the caller gives (the replica has its own).
local function proven_state(buffer_key, meta_key, config_key, rid)
  local meta = redis.call("HMGET", meta_key, "rid", "last_seq", "message_count", "total_tokens",
    "estimated_count", "covered_seq", "gen")
  if meta[1] ~= (rid or run_id()) or not meta[2] then return nil end
  local count = tonumber(meta[3]) or -1
  if redis.call("LLEN", buffer_key) ~= count or redis.call("EXISTS", config_key) == 0 then return nil end
  return { last_seq = tonumber(meta[2]), count = count, tokens = tonumber(meta[4]) or 0,
    estimated = tonumber(meta[5]) or 0, covered_seq = tonumber(meta[6]) or 0, gen = meta[7] }
end

-- The session's epoch token: every invalidation (erase, config change, drop) changes it, and a
-- rebuild installs its snapshot only if the token it read before the snapshot is still current.
-- Made from the clock when missing, so that an evicted epoch never comes back with an old value.
-- It lives a minute: far longer than a rebuild (a snapshot read and one script, each bounded by
-- its timeout), and a rebuild that outlives it is refused all the same (a missing epoch equals no
-- token), so an erased session's epoch is gone a minute later.
local function epoch_token(epoch_key)
  local token = redis.call("GET", epoch_key)
  if not token then
    local now = redis.call("TIME")
    token = now[1] .. string.format("%06d", tonumber(now[2]))
    redis.call("SET", epoch_key, token, "EX", 60)
  end
  return token
end

-- The "ok" reply of the read scripts: the meta, config and summary hashes (flat), the newest
-- `newest` entries ("all", or a number; 0 for none) and the buffer's PTTL. KEYS as read-5.lua's.
local function context_reply(keys, newest)
  local entries = {}
  if newest == "all" then
    entries = redis.call("LRANGE", keys[1], 0, -1)
  elseif tonumber(newest) > 0 then
    entries = redis.call("LRANGE", keys[1], -tonumber(newest), -1)
  end
  return {
    "ok",
    redis.call("HGETALL", keys[2]),
    redis.call("HGETALL", keys[3]),
    redis.call("HGETALL", keys[4]),
    entries,
    redis.call("PTTL", keys[1]),
  }
end
