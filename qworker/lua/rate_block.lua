--[[ rate_block: remember that the remote side refused until a given time, so every worker waits;
and give back the slot the refused attempt had reserved, in the same step.

KEYS[1]     blocked_until key (ms)
KEYS[2]     hash of every rate-limit key to its limits (an unknown key is added unlimited)
KEYS[3]     execution log sorted set of this key
KEYS[4]     migration fence (never exists; see keys.py)
ARGV[1]     rate key name
ARGV[2]     blocked_until_ms
ARGV[3]     now_ms ('' for Redis's own clock, TIME)
ARGV[4]     member of the reservation to give back ('' for none)
Returns     the blocked_until_ms now in force (a later block is never shortened)
]]
local until_ms = tonumber(ARGV[2])
local now_ms = tonumber(ARGV[3])
if not now_ms then
  local time = redis.call('TIME')
  now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local current = tonumber(redis.call('GET', KEYS[1]))

if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[4])
end
redis.call('HSETNX', KEYS[2], ARGV[1], '||0')
if current and current >= until_ms then
  return current
end
local ttl_ms = until_ms - now_ms
if ttl_ms <= 0 then
  return until_ms
end
redis.call('SET', KEYS[1], until_ms, 'PX', ttl_ms)
return until_ms
