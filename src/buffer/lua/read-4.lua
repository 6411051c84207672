--[[
  Reads everything a context needs in one round trip.

  KEYS[1] buffer LIST   KEYS[2] meta HASH   KEYS[3] config HASH   KEYS[4] summary HASH
  ARGV[1] how many newest entries to return: a number (0 for none) or "all"

  Returns { meta fields (flat), config fields (flat), summary fields (flat), entries, buffer PTTL }.
  An empty meta means the buffer is not in Redis (never written, expired or evicted).
]]
local entries = {}
if ARGV[1] == "all" then
  entries = redis.call("LRANGE", KEYS[1], 0, -1)
elseif tonumber(ARGV[1]) > 0 then
  entries = redis.call("LRANGE", KEYS[1], -tonumber(ARGV[1]), -1)
end
return {
  redis.call("HGETALL", KEYS[2]),
  redis.call("HGETALL", KEYS[3]),
  redis.call("HGETALL", KEYS[4]),
  entries,
  redis.call("PTTL", KEYS[1]),
}
