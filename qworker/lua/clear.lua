--[[ clear: delete queues (lists or sorted sets of job ids) together with the jobs they hold.

KEYS[1..n]  the lists and sorted sets to clear
ARGV[1]     job key prefix
Returns     the number of entries deleted
]]
local job_prefix = ARGV[1]

local deleted = 0
for _, queue_key in ipairs(KEYS) do
  local kind = redis.call('TYPE', queue_key)['ok']
  local job_ids = {}
  if kind == 'list' then
    job_ids = redis.call('LRANGE', queue_key, 0, -1)
  elseif kind == 'zset' then
    job_ids = redis.call('ZRANGE', queue_key, 0, -1)
  end
  for _, job_id in ipairs(job_ids) do
    -- A hand-pushed payload is not an id; it has no hash, and deleting the list removes it.
    if string.len(job_id) <= 64 then
      redis.call('DEL', job_prefix .. job_id)
    end
  end
  deleted = deleted + #job_ids
  redis.call('DEL', queue_key)
end
return deleted
