--[[ trim_dead_letter: keep the dead-letter queue within its retention cap (age and size), dropping
the oldest entries and their job hashes, and counting what was dropped.

KEYS[1]     dead-letter sorted set (score: failed_at_ms)
KEYS[2]     statistics hash
ARGV[1]     job key prefix
ARGV[2]     oldest_kept_ms: entries that failed before this are dropped
ARGV[3]     max_jobs: at most this many are kept (the newest)
Returns     the number of entries dropped
]]
local job_prefix = ARGV[1]
local dead_key = KEYS[1]
local stats_key = KEYS[2]

local dropped = 0
local function drop(job_ids)
  for _, job_id in ipairs(job_ids) do
    redis.call('ZREM', dead_key, job_id)
    redis.call('DEL', job_prefix .. job_id)
    dropped = dropped + 1
  end
end

drop(redis.call('ZRANGEBYSCORE', dead_key, '-inf', '(' .. ARGV[2]))
local excess = redis.call('ZCARD', dead_key) - tonumber(ARGV[3])
if excess > 0 then
  drop(redis.call('ZRANGE', dead_key, 0, excess - 1))
end
if dropped > 0 then
  redis.call('HINCRBY', stats_key, 'dead_dropped', dropped)
end
return dropped
