--[[ hand_back: return unfinished in-flight jobs to the front of their priority list at shutdown,
without counting an attempt, so they need not wait for their lease to expire.

KEYS[1]     in-flight sorted set
KEYS[2..5]  priority lists 1 .. 4
KEYS[6]     wakeup list
ARGV[1]     job key prefix
ARGV[2..]   pairs: job id, owner token
Returns     the number of jobs handed back (jobs no longer owned are left alone)
]]
local job_prefix = ARGV[1]
local inflight_key = KEYS[1]
local wakeup_key = KEYS[6]

local handed_back = 0
for i = 2, #ARGV, 2 do
  local job_id = ARGV[i]
  local job_key = job_prefix .. job_id
  if redis.call('HGET', job_key, 'owner') == ARGV[i + 1] then
    local priority = tonumber(redis.call('HGET', job_key, 'priority')) or 4
    redis.call('ZREM', inflight_key, job_id)
    redis.call('HDEL', job_key, 'owner')
    redis.call('RPUSH', KEYS[1 + priority], job_id)
    handed_back = handed_back + 1
  end
end
if handed_back > 0 and redis.call('LLEN', wakeup_key) == 0 then
  redis.call('LPUSH', wakeup_key, '1')
end
return handed_back
