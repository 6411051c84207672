--[[
  Releases a lease, only when the caller still holds it (never another holder's).

  KEYS[1] lease STRING     ARGV[1] "<token>:<holder>"
  Returns 1 when released, 0 otherwise.
]]
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
return 1
