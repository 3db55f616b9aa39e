--[[ renew: extend the leases of this worker's running jobs. A job it no longer owns (its lease
expired and it was recovered) is not renewed and is reported, so the worker will not settle it.

KEYS[1]     in-flight sorted set
KEYS[2]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     now_ms ('' for Redis's own clock, TIME)
ARGV[3]     lease_ms: each lease is extended to now + lease_ms
ARGV[4..]   pairs: job id, owner token
Returns     flat array of the (job id, owner token) pairs this worker no longer owns
]]
local job_prefix = ARGV[1]
local inflight_key = KEYS[1]
local now_ms = tonumber(ARGV[2])
if not now_ms then
  local time = redis.call('TIME')
  now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local deadline_ms = now_ms + tonumber(ARGV[3])

-- Reads first: which claims are still ours.
local ours, lost = {}, {}
for i = 4, #ARGV, 2 do
  local job_id = ARGV[i]
  if redis.call('HGET', job_prefix .. job_id, 'owner') == ARGV[i + 1] then
    ours[#ours + 1] = job_id
  else
    lost[#lost + 1] = job_id
    lost[#lost + 1] = ARGV[i + 1]
  end
end
for _, job_id in ipairs(ours) do
  redis.call('ZADD', inflight_key, 'XX', deadline_ms, job_id)
end
return lost
