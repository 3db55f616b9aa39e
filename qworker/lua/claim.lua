--[[ claim: take up to max_jobs ready jobs, highest priority first and oldest first within a
priority, and record each as in flight under this worker's lease, in one atomic step.

Everything is read before the first write, so an error (a key another cluster node holds, a
wrong type) can only stop the script before it has moved anything.

KEYS[1..4]  priority lists 1 (urgent) .. 4 (low)
KEYS[5]     in-flight sorted set (score: lease deadline, ms)
KEYS[6]     wakeup list
KEYS[7]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     worker_id
ARGV[3]     now_ms ('' for Redis's own clock, TIME)
ARGV[4]     lease_ms: the lease runs until now + lease_ms
ARGV[5]     max_jobs
ARGV[6]     id_base: a unique string; a hand-pushed payload gets the id id_base .. '-' .. n
Returns     flat array, two entries per job: id, then the job hash as a field/value array.
            The owner token of each claim is worker_id .. ':' .. the hash's 'claims' field.
]]
local job_prefix = ARGV[1]
local worker_id = ARGV[2]
local now_ms = tonumber(ARGV[3])
if not now_ms then
  local time = redis.call('TIME')
  now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local lease_deadline_ms = now_ms + tonumber(ARGV[4])
local max_jobs = tonumber(ARGV[5])
local id_base = ARGV[6]
local inflight_key = KEYS[5]
local wakeup_key = KEYS[6]

-- Reads: the oldest entries of each list (at its right end), and whether each is a stored job.
local plan = {}  -- {priority, entry, job_id, adopt}
local taken_per_list = {0, 0, 0, 0}
for priority = 1, 4 do
  local wanted = max_jobs - #plan
  if wanted <= 0 then break end
  local entries = redis.call('LRANGE', KEYS[priority], -wanted, -1)
  for i = #entries, 1, -1 do
    local entry = entries[i]
    local job_id = entry
    -- Anything that is not the id of a stored job was pushed by another program: adopt it.
    local adopt = string.len(entry) > 64 or redis.call('EXISTS', job_prefix .. entry) == 0
    if adopt then
      job_id = id_base .. '-' .. (#plan + 1)
      redis.call('EXISTS', job_prefix .. job_id)  -- a read first, like every key written below
    end
    plan[#plan + 1] = {priority, entry, job_id, adopt}
    taken_per_list[priority] = taken_per_list[priority] + 1
  end
end

-- Writes.
for priority = 1, 4 do
  if taken_per_list[priority] > 0 then
    redis.call('RPOP', KEYS[priority], taken_per_list[priority])
  end
end
local claimed = {}
for _, step in ipairs(plan) do
  local priority, entry, job_id, adopt = step[1], step[2], step[3], step[4]
  local job_key = job_prefix .. job_id
  if adopt then
    redis.call('HSET', job_key, 'payload', entry, 'priority', priority,
      'attempts', 0, 'enqueued_at_ms', now_ms)
  end
  local claims = redis.call('HINCRBY', job_key, 'claims', 1)
  redis.call('HSET', job_key, 'owner', worker_id .. ':' .. claims, 'started_at_ms', now_ms)
  redis.call('ZADD', inflight_key, lease_deadline_ms, job_id)
  claimed[#claimed + 1] = job_id
  claimed[#claimed + 1] = redis.call('HGETALL', job_key)
end

if #plan == 0 then
  -- Nothing is ready, so any token left is stale: an idle worker must block, not spin.
  redis.call('DEL', wakeup_key)
elseif #plan == max_jobs and redis.call('LLEN', wakeup_key) == 0 then
  -- More may be ready: pass the word on to the next idle worker.
  redis.call('LPUSH', wakeup_key, '1')
end
return claimed
