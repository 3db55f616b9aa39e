--[[ bury: move an in-flight job to the dead-letter queue with its error, if still ours. A job an
operator asked to cancel ends 'canceled' instead (its error recorded all the same).

KEYS[1]     in-flight sorted set
KEYS[2]     dead-letter sorted set (score: failed_at_ms)
KEYS[3]     statistics hash
KEYS[4]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     job id
ARGV[3]     owner token
ARGV[4]     attempts, this one included
ARGV[5]     error JSON
ARGV[6]     now_ms
ARGV[7]     1 if this attempt failed (counted in 'failed'), 0 if the job never ran (bad payload)
ARGV[8]     keep_ms: how long the record of a canceled job stays readable
Returns     1 moved, 2 canceled instead, 0 not owned (nothing changed)
]]
--#include lanes
local inflight_key = KEYS[1]
local dead_key = KEYS[2]
local stats_key = KEYS[3]
local job_id = ARGV[2]
local job_key = ARGV[1] .. job_id
local now_ms = tonumber(ARGV[6])

local fields = redis.call('HMGET', job_key, 'owner', unpack(END_FIELDS))
if fields[1] ~= ARGV[3] then
  return 0
end
local end_fields = end_fields_at(fields, 2)
redis.call('ZREM', inflight_key, job_id)
redis.call('HDEL', job_key, 'owner')
redis.call('HSET', job_key, 'attempts', ARGV[4], 'error', ARGV[5], 'failed_at_ms', now_ms)
if ARGV[7] == '1' then
  redis.call('HINCRBY', stats_key, 'failed', 1)
end
if end_fields[3] then
  redis.call('HINCRBY', stats_key, 'canceled', 1)
  end_job(job_key, job_id, 'canceled', now_ms, tonumber(ARGV[8]), end_fields)
  record_recent('canceled', {job_id}, tonumber(ARGV[8]))
  return 2
end
redis.call('ZADD', dead_key, now_ms, job_id)
redis.call('HINCRBY', stats_key, 'dead', 1)
end_job(job_key, job_id, 'dead', now_ms, 0, end_fields)
return 1
