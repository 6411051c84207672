--[[
  Takes a session's summarizer lease if nobody holds it, with a new fencing token.

  KEYS[1] lease STRING ("<token>:<holder>")     KEYS[2] fencing counter STRING
  ARGV[1] holder id     ARGV[2] lease time (ms)
  ARGV[3] floor: the highest fencing token committed in the database (tokens stay above it even
          when Redis lost the counter)
  ARGV[4] counter TTL (s)

  Returns { token, 0 } when taken, { 0, remaining ms } when someone else holds it.
]]
local holder = redis.call("GET", KEYS[1])
if holder then return { 0, redis.call("PTTL", KEYS[1]) } end
local counter = tonumber(redis.call("GET", KEYS[2]) or "0")
local floor = tonumber(ARGV[3])
if counter < floor then redis.call("SET", KEYS[2], floor) end
local token = redis.call("INCR", KEYS[2])
redis.call("EXPIRE", KEYS[2], tonumber(ARGV[4]))
redis.call("SET", KEYS[1], token .. ":" .. ARGV[1], "PX", tonumber(ARGV[2]))
return { token, 0 }
