--[[ rate_block: remember that the remote side refused until a given time, so every worker waits.

KEYS[1]     blocked_until key (ms)
KEYS[2]     hash of every rate-limit key to its limits (an unknown key is added unlimited)
ARGV[1]     rate key name
ARGV[2]     blocked_until_ms
ARGV[3]     now_ms
Returns     the blocked_until_ms now in force (a later block is never shortened)
]]
local until_ms = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]))
redis.call('HSETNX', KEYS[2], ARGV[1], '||0')
if current and current >= until_ms then
  return current
end
local ttl_ms = until_ms - tonumber(ARGV[3])
if ttl_ms <= 0 then
  return until_ms
end
redis.call('SET', KEYS[1], until_ms, 'PX', ttl_ms)
return until_ms
