--[[ recover: take back jobs whose lease expired (their worker died or stalled). Each counts as
an attempt: back to the front of its priority list, or to the dead-letter queue once it has
used up its retries, so a job that kills its worker every time cannot loop forever. A job an
operator asked to cancel ends 'canceled' instead.

Expiry is judged by Redis's clock, the one every lease deadline was set by.

KEYS[1]     in-flight sorted set
KEYS[2..5]  shared priority lists 1 .. 4 (a laned type goes to its lane: lanes.lua)
KEYS[6]     dead-letter sorted set
KEYS[7]     statistics hash
KEYS[8]     wakeup list
KEYS[9]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     now_ms ('' for Redis's own clock, TIME)
ARGV[3]     limit: at most this many jobs per call
ARGV[4]     default max_retries (for jobs that do not carry their own)
ARGV[5]     error JSON recorded on a job sent to the dead-letter queue
ARGV[6]     keep_ms: how long the record of a canceled job stays readable
Returns     {requeued, buried}
]]
--#include lanes
local job_prefix = ARGV[1]
local now_ms = now_or_redis(ARGV[2])
local keep_ms = tonumber(ARGV[6])
local inflight_key = KEYS[1]
local dead_key = KEYS[6]
local stats_key = KEYS[7]
local wakeup_key = KEYS[8]

-- Reads first: every expired job's record.
local expired = redis.call('ZRANGEBYSCORE', inflight_key, '-inf', now_ms, 'LIMIT', 0, ARGV[3])
local records = {}
for i, job_id in ipairs(expired) do
  records[i] = redis.call('HMGET', job_prefix .. job_id, 'payload', 'attempts', 'max_retries',
    'priority', 'job_type', unpack(END_FIELDS))
  is_laned(records[i][5])
end

local requeued, buried, canceled = 0, 0, {}
for i, job_id in ipairs(expired) do
  redis.call('ZREM', inflight_key, job_id)
  local record = records[i]
  -- A job without a record was deleted (clear --all): only its in-flight entry was left.
  if record[1] then
    local job_key = job_prefix .. job_id
    local end_fields = end_fields_at(record, 6)
    local attempts = (tonumber(record[2]) or 0) + 1
    local max_retries = tonumber(record[3]) or tonumber(ARGV[4])
    redis.call('HDEL', job_key, 'owner')
    redis.call('HSET', job_key, 'attempts', attempts)
    redis.call('HINCRBY', stats_key, 'recovered', 1)
    if end_fields[3] then
      redis.call('HSET', job_key, 'error', ARGV[5], 'failed_at_ms', now_ms)
      redis.call('HINCRBY', stats_key, 'canceled', 1)
      end_job(job_key, job_id, 'canceled', now_ms, keep_ms, end_fields)
      canceled[#canceled + 1] = job_id
    elseif attempts > max_retries then
      redis.call('HSET', job_key, 'error', ARGV[5], 'failed_at_ms', now_ms)
      redis.call('ZADD', dead_key, now_ms, job_id)
      redis.call('HINCRBY', stats_key, 'dead', 1)
      end_job(job_key, job_id, 'dead', now_ms, 0, end_fields)
      buried = buried + 1
    else
      local priority = tonumber(record[4]) or 4
      redis.call('RPUSH', ready_list(2, record[5], priority), job_id)
      stamp(job_key, 'queued', now_ms)
      requeued = requeued + 1
    end
  end
end
record_recent('canceled', canceled, keep_ms)
wake_ready(wakeup_key)
return {requeued, buried}
