--[[ cancel: cancel one job. A job waiting anywhere (queued, scheduled, retry, parked, paused,
waiting for its dependencies)
leaves its list or set and ends 'canceled' in this step. A running job is marked: the worker
holding its lease stops it and settles it 'canceled' (and if its worker dies first, recovery
cancels it instead of running it again). A finished job is left as it is.

KEYS[1..4]  shared priority lists 1 .. 4 (a queued job of a laned type is in its lane, or
            still in a shared list if it was queued before the lane opened: lanes.lua)
KEYS[5]     scheduled sorted set
KEYS[6]     retry sorted set
KEYS[7]     parked sorted set
KEYS[8]     in-flight sorted set
KEYS[9]     statistics hash
KEYS[10]    migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     job id
ARGV[3]     now_ms ('' for Redis's own clock, TIME)
ARGV[4]     keep_ms: how long the record of a canceled job stays readable
Returns     {outcome, state before}: outcome 'canceled', 'requested' (running: its worker
            stops it), 'finished' (done, dead or canceled already), or 'missing' (no such job)
]]
--#include lanes
local job_prefix = ARGV[1]
local job_id = ARGV[2]
local job_key = job_prefix .. job_id
local now_ms = now_or_redis(ARGV[3])
local keep_ms = tonumber(ARGV[4])

-- Reads first: the job, and (for records older than job states) where it is.
local fields = redis.call('HMGET', job_key, 'state', 'priority', 'job_type', 'enqueued_at_ms',
  unpack(END_FIELDS))
if not fields[4] then
  return {'missing', ''}
end
local state = fields[1]
if not state then
  state = 'queued'
  for _, place in ipairs({{'scheduled', KEYS[5]}, {'retry', KEYS[6]}, {'parked', KEYS[7]},
      {'running', KEYS[8]}}) do
    if redis.call('ZSCORE', place[2], job_id) then state = place[1] end
  end
end
if state == 'done' or state == 'dead' or state == 'canceled' then
  return {'finished', state}
end
if state == 'running' then
  if not fields[7] then
    redis.call('HSET', job_key, 'cancel_requested_at_ms', now_ms)
    redis.call('SADD', NS .. KEY_NAMES.CANCEL_REQUESTS, job_id)
  end
  return {'requested', state}
end

local removed = 0
if state == 'queued' then
  local priority = tonumber(fields[2]) or 4
  if is_laned(fields[3]) then
    removed = redis.call('LREM', lane_list(fields[3], priority), -1, job_id)
  end
  if removed == 0 then
    removed = redis.call('LREM', KEYS[priority], -1, job_id)
  end
elseif state == 'scheduled' then
  removed = redis.call('ZREM', KEYS[5], job_id)
elseif state == 'retry' then
  removed = redis.call('ZREM', KEYS[6], job_id)
elseif state == 'parked' then
  removed = redis.call('ZREM', KEYS[7], job_id)
elseif state == 'waiting' then
  removed = redis.call('ZREM', NS .. KEY_NAMES.WAITING, job_id)
elseif state == 'paused' then
  removed = redis.call('ZREM', NS .. KEY_NAMES.HELD .. (fields[3] or ''), job_id)
end
if removed == 0 then
  -- Its state names a place it is not in (a job of another version, moved by hand): leave it.
  return {'missing', state}
end
redis.call('HSET', job_key, 'canceled_from', state)
redis.call('HINCRBY', KEYS[9], 'canceled', 1)
end_job(job_key, job_id, 'canceled', now_ms, keep_ms, end_fields_at(fields, 5))
record_recent('canceled', {job_id}, keep_ms)
return {'canceled', state}
