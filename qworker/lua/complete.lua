--[[ complete: acknowledge finished jobs; each leaves in-flight and is deleted, if still ours.

KEYS[1]     in-flight sorted set
KEYS[2]     statistics hash
ARGV[1]     job key prefix
ARGV[2..]   pairs: job id, owner token
Returns     array of the ids that were NOT acknowledged because this worker no longer owns them
]]
local job_prefix = ARGV[1]
local inflight_key = KEYS[1]
local stats_key = KEYS[2]

local lost = {}
local done = 0
for i = 2, #ARGV, 2 do
  local job_id = ARGV[i]
  local job_key = job_prefix .. job_id
  if redis.call('HGET', job_key, 'owner') == ARGV[i + 1] then
    redis.call('ZREM', inflight_key, job_id)
    redis.call('DEL', job_key)
    done = done + 1
  else
    lost[#lost + 1] = job_id
  end
end
if done > 0 then
  redis.call('HINCRBY', stats_key, 'processed', done)
end
return lost
