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
