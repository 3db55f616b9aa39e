--[[ run_now: move a job waiting for its time (scheduled, retry or parked) to the front of its
priority list, so the next free worker takes it. A parked job still passes its rate limit when
claimed (and waits again if the limit is closed).

KEYS[1..4]  shared priority lists 1 .. 4 (a laned type goes to its lane: ready_lists.lua)
KEYS[5]     scheduled sorted set
KEYS[6]     retry sorted set
KEYS[7]     parked sorted set
KEYS[8]     wakeup list
KEYS[9]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     job id
ARGV[3]     now_ms ('' for Redis's own clock, TIME)
Returns     {outcome, state before}: outcome 'moved', 'not_waiting' (in another state), or
            'missing' (no such job)
]]
--#include ready_lists
local job_prefix = ARGV[1]
local job_id = ARGV[2]
local job_key = job_prefix .. job_id

local fields = redis.call('HMGET', job_key, 'state', 'priority', 'enqueued_at_ms', 'job_type')
if not fields[3] then
  return {'missing', ''}
end
local sets = {scheduled = KEYS[5], retry = KEYS[6], parked = KEYS[7]}
local state, source = fields[1], nil
if state then
  source = sets[state]
else  -- a record older than job states: look where it is
  for name, key in pairs(sets) do
    if redis.call('ZSCORE', key, job_id) then state, source = name, key end
  end
end
if not source or not redis.call('ZSCORE', source, job_id) then
  return {'not_waiting', state or 'queued'}
end
local priority = tonumber(fields[2]) or 4
is_laned(fields[4])
redis.call('ZREM', source, job_id)
redis.call('RPUSH', ready_list(1, fields[4], priority), job_id)
stamp(job_key, 'queued', now_or_redis(ARGV[3]))
wake_ready(KEYS[8])
return {'moved', state}
