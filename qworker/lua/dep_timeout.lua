--[[ dep_timeout: jobs that have waited for their dependencies past their dep-timeout go to the
dead-letter queue with that reason, and their own dependents with them (dependencies.lua), so
nothing waits forever.

KEYS[1]     waiting sorted set (score: the time a job stops waiting, ms)
KEYS[2]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     now_ms ('' for Redis's own clock, TIME)
ARGV[3]     limit: at most this many jobs per call
Returns     how many jobs were dead-lettered (the caller calls again while it is `limit`)
]]
--#include lanes
local job_prefix = ARGV[1]
local now_ms = now_or_redis(ARGV[2])
local waiting_key = KEYS[1]

local expired = redis.call('ZRANGEBYSCORE', waiting_key, '-inf', now_ms, 'LIMIT', 0, ARGV[3])
local states = {}
for i, job_id in ipairs(expired) do
  states[i] = redis.call('HGET', job_prefix .. job_id, 'state')
end
local count = 0
for i, job_id in ipairs(expired) do
  if states[i] == 'waiting' then
    -- An earlier one's cascade may have taken this one already.
    if redis.call('HGET', job_prefix .. job_id, 'state') == 'waiting' then
      dead_letter_waiting(job_prefix .. job_id, job_id,
        'waited longer than its dep-timeout for its dependencies', 'timeout', now_ms)
    end
    count = count + 1
  else
    redis.call('ZREM', waiting_key, job_id)  -- an entry left by a cleared record
  end
end
return count
