--[[ trim_dead_letter: keep the dead-letter queue within its retention cap (age and size), dropping
the oldest entries and their job hashes, and counting what was dropped. Bounded, so a huge
dead-letter queue never blocks Redis for long: the caller calls again while limit come back.

KEYS[1]     dead-letter sorted set (score: failed_at_ms)
KEYS[2]     statistics hash
KEYS[3]     fence (keys.fence: it never exists, and a script that declares it does not run
            while the namespace's slot migrates)
ARGV[1]     job key prefix
ARGV[2]     oldest_kept_ms: entries that failed before this are dropped
ARGV[3]     max_jobs: at most this many are kept (the newest)
ARGV[4]     limit: at most this many entries are dropped by this call
ARGV[5]     keep_ms: how long a done dependency's record stays once no dependent needs it
Returns     the number of entries dropped
]]
--#include lanes
local job_prefix = ARGV[1]
local dead_key = KEYS[1]
local stats_key = KEYS[2]
local limit = tonumber(ARGV[4])
local keep_ms = tonumber(ARGV[5])

-- Both rules drop from the oldest end, so what goes is a count of the lowest ranks.
local too_old = redis.call('ZCOUNT', dead_key, '-inf', '(' .. ARGV[2])
local too_many = redis.call('ZCARD', dead_key) - tonumber(ARGV[3])
local count = math.min(math.max(too_old, too_many), limit)
if count <= 0 then return 0 end

local job_ids = redis.call('ZRANGE', dead_key, 0, count - 1)
redis.call('ZREMRANGEBYRANK', dead_key, 0, count - 1)
for _, job_id in ipairs(job_ids) do
  delete_record(job_prefix .. job_id, job_id, keep_ms)
end
redis.call('HINCRBY', stats_key, 'dead_dropped', #job_ids)
return #job_ids
