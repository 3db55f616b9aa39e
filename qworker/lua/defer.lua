--[[ defer: move an in-flight job to a time-ordered set (the retry set after a failure, the
parked set while its rate limit is closed, the scheduled set while no worker knows its type),
if this worker still owns it. A job an operator asked to cancel is not deferred: it ends
'canceled' here, with the attempt's error recorded, and is never retried.

KEYS[1]     in-flight sorted set
KEYS[2]     target sorted set: retry, parked or scheduled (score: due_ms)
KEYS[3]     statistics hash
KEYS[4]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     job id
ARGV[3]     owner token
ARGV[4]     due_ms
ARGV[5]     attempts after this one ('' when the attempt does not count, as when parked)
ARGV[6]     error JSON ('' for none)
ARGV[7]     now_ms
ARGV[8]     rate-limit key the job waits for ('' for none): release_parked.lua lets out only
            as many jobs of one key as its limiter admits
ARGV[9]     the job's state in the target set: 'retry', 'parked' or 'scheduled'
ARGV[10]    keep_ms: how long the record of a canceled job stays readable
Returns     1 moved, 2 canceled instead, 0 not owned (nothing changed)
]]
--#include lanes
local inflight_key = KEYS[1]
local target_key = KEYS[2]
local stats_key = KEYS[3]
local job_id = ARGV[2]
local job_key = ARGV[1] .. job_id
local attempts = ARGV[5]
local error_json = ARGV[6]
local now_ms = tonumber(ARGV[7])

local fields = redis.call('HMGET', job_key, 'owner', unpack(END_FIELDS))
if fields[1] ~= ARGV[3] then
  return 0
end
local end_fields = end_fields_at(fields, 2)
redis.call('ZREM', inflight_key, job_id)
redis.call('HDEL', job_key, 'owner')
if attempts ~= '' then
  redis.call('HSET', job_key, 'attempts', attempts, 'failed_at_ms', now_ms)
  redis.call('HINCRBY', stats_key, 'failed', 1)
end
if error_json ~= '' then
  redis.call('HSET', job_key, 'error', error_json)
end
if end_fields[3] then
  redis.call('HINCRBY', stats_key, 'canceled', 1)
  end_job(job_key, job_id, 'canceled', now_ms, tonumber(ARGV[10]), end_fields)
  record_recent('canceled', {job_id}, tonumber(ARGV[10]))
  return 2
end
if ARGV[8] ~= '' then
  redis.call('HSET', job_key, 'rate_key', ARGV[8])
end
redis.call('HSET', job_key, 'state', ARGV[9], 'state_at_ms', now_ms, 'due_at_ms', ARGV[4])
redis.call('ZADD', target_key, ARGV[4], job_id)
return 1
