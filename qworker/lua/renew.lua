--[[ renew: extend the leases of this worker's running jobs. A job it no longer owns (its lease
expired and it was recovered) is not renewed and is reported, so the worker will not settle it.

KEYS[1]     in-flight sorted set
ARGV[1]     job key prefix
ARGV[2]     new lease_deadline_ms
ARGV[3..]   pairs: job id, owner token
Returns     flat array of the (job id, owner token) pairs this worker no longer owns
]]
local job_prefix = ARGV[1]
local inflight_key = KEYS[1]

local lost = {}
for i = 3, #ARGV, 2 do
  local job_id = ARGV[i]
  if redis.call('HGET', job_prefix .. job_id, 'owner') == ARGV[i + 1] then
    redis.call('ZADD', inflight_key, 'XX', ARGV[2], job_id)
  else
    lost[#lost + 1] = job_id
    lost[#lost + 1] = ARGV[i + 1]
  end
end
return lost
