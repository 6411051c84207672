--[[
  Extends a lease, only while the caller still holds it.

  KEYS[1] lease STRING     ARGV[1] "<token>:<holder>"     ARGV[2] lease time (ms)
  Returns 1 when extended, 0 when the lease was lost (expired, or taken by another holder).
]]
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[2]))
return 1
