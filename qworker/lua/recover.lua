--[[ recover: take back jobs whose lease expired (their worker died or stalled). Each counts as
an attempt: back to the front of its priority list, or to the dead-letter queue once it has
used up its retries, so a job that kills its worker every time cannot loop forever.

KEYS[1]     in-flight sorted set
KEYS[2..5]  priority lists 1 .. 4
KEYS[6]     dead-letter sorted set
KEYS[7]     statistics hash
KEYS[8]     wakeup list
ARGV[1]     job key prefix
ARGV[2]     now_ms
ARGV[3]     limit: at most this many jobs per call
ARGV[4]     default max_retries (for jobs that do not carry their own)
ARGV[5]     error JSON recorded on a job sent to the dead-letter queue
Returns     {requeued, buried}
]]
local job_prefix = ARGV[1]
local now_ms = ARGV[2]
local inflight_key = KEYS[1]
local dead_key = KEYS[6]
local stats_key = KEYS[7]
local wakeup_key = KEYS[8]

local expired = redis.call('ZRANGEBYSCORE', inflight_key, '-inf', now_ms, 'LIMIT', 0, ARGV[3])
local requeued, buried = 0, 0
for _, job_id in ipairs(expired) do
  redis.call('ZREM', inflight_key, job_id)
  local job_key = job_prefix .. job_id
  if redis.call('EXISTS', job_key) == 1 then
    redis.call('HDEL', job_key, 'owner')
    redis.call('HINCRBY', stats_key, 'recovered', 1)
    local attempts = redis.call('HINCRBY', job_key, 'attempts', 1)
    local max_retries = tonumber(redis.call('HGET', job_key, 'max_retries')) or tonumber(ARGV[4])
    if attempts > max_retries then
      redis.call('HSET', job_key, 'error', ARGV[5], 'failed_at_ms', now_ms)
      redis.call('ZADD', dead_key, now_ms, job_id)
      redis.call('HINCRBY', stats_key, 'dead', 1)
      buried = buried + 1
    else
      local priority = tonumber(redis.call('HGET', job_key, 'priority')) or 4
      redis.call('RPUSH', KEYS[1 + priority], job_id)
      requeued = requeued + 1
    end
  end
end
if requeued > 0 and redis.call('LLEN', wakeup_key) == 0 then
  redis.call('LPUSH', wakeup_key, '1')
end
return {requeued, buried}
