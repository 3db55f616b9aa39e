--[[ namespace (included): the key names (keys.py), the namespace of the job key prefix in
ARGV[1], Redis's clock and the state stamp every move writes. Every other include starts here.
]]
--#include keys
local NS = string.sub(ARGV[1], 1, -1 - string.len(KEY_NAMES.JOB_DATA))

local function redis_now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- The time a caller gave ('' or anything not a number: Redis's own clock).
local function now_or_redis(value)
  return tonumber(value) or redis_now_ms()
end

local function stamp(job_key, state, now_ms)
  redis.call('HSET', job_key, 'state', state, 'state_at_ms', now_ms)
end
