--[[ clear: delete up to limit entries of queues (lists or sorted sets of job ids) together with
their jobs, oldest end first. Bounded, so a queue of millions never blocks Redis for long: the
caller calls again until fewer than limit entries come back.

KEYS[1..n]  the lists and sorted sets to clear, then the fence (keys.fence: it never exists,
            and a script that declares it does not run while the namespace's slot migrates)
ARGV[1]     job key prefix
ARGV[2]     limit: at most this many entries are deleted
ARGV[3]     keep_ms: how long a done dependency's record stays once no dependent needs it
Returns     the number of entries deleted (less than limit: the queues are empty)
]]
--#include lanes
local job_prefix = ARGV[1]
local limit = tonumber(ARGV[2])
local keep_ms = tonumber(ARGV[3])

-- Read every batch first, then write: nothing can fail half-way through (a job's record is read
-- with pcall, see delete_record).
local batches = {}
local budget = limit
for i = 1, #KEYS - 1 do
  local queue_key = KEYS[i]
  local kind = redis.call('TYPE', queue_key)['ok']
  local job_ids = {}
  if budget > 0 and kind == 'list' then
    job_ids = redis.call('LRANGE', queue_key, 0, budget - 1)
  elseif budget > 0 and kind == 'zset' then
    job_ids = redis.call('ZRANGE', queue_key, 0, budget - 1)
  end
  budget = budget - #job_ids
  batches[#batches + 1] = {queue_key, kind, job_ids}
end

-- The queues first: deleting a record may queue or dead-letter a dependent (delete_record),
-- which must not shift what the trims remove.
local deleted = 0
for _, batch in ipairs(batches) do
  local queue_key, kind, job_ids = batch[1], batch[2], batch[3]
  if kind == 'list' and #job_ids > 0 then
    redis.call('LTRIM', queue_key, #job_ids, -1)
  elseif kind == 'zset' and #job_ids > 0 then
    redis.call('ZREMRANGEBYRANK', queue_key, 0, #job_ids - 1)
  elseif kind ~= 'list' and kind ~= 'zset' and kind ~= 'none' then
    redis.call('DEL', queue_key)  -- not a queue at all: nothing to keep in it
  end
  deleted = deleted + #job_ids
end
for _, batch in ipairs(batches) do
  for _, job_id in ipairs(batch[3]) do
    -- A hand-pushed payload is not an id; it has no hash, and trimming the list removed it.
    if string.len(job_id) <= 64 then
      delete_record(job_prefix .. job_id, job_id, keep_ms)
    end
  end
end
return deleted
