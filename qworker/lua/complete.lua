--[[ complete: acknowledge finished jobs; each leaves in-flight and is deleted, if still ours.

KEYS[1]     in-flight sorted set
KEYS[2]     statistics hash
KEYS[3]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2..]   pairs: job id, owner token
Returns     array of the ids that were NOT acknowledged because this worker no longer owns them
]]
local job_prefix = ARGV[1]
local inflight_key = KEYS[1]
local stats_key = KEYS[2]

-- Reads first: which of these jobs are still ours.
local ours, lost = {}, {}
for i = 2, #ARGV, 2 do
  local job_id = ARGV[i]
  if redis.call('HGET', job_prefix .. job_id, 'owner') == ARGV[i + 1] then
    ours[#ours + 1] = job_id
  else
    lost[#lost + 1] = job_id
  end
end
for _, job_id in ipairs(ours) do
  redis.call('ZREM', inflight_key, job_id)
  redis.call('DEL', job_prefix .. job_id)
end
if #ours > 0 then
  redis.call('HINCRBY', stats_key, 'processed', #ours)
end
return lost
