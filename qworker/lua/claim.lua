--[[ claim: take up to max_jobs ready jobs, highest priority first and oldest first within a
priority, and record each as in flight under this worker's lease, in one atomic step.

KEYS[1..4]  priority lists 1 (urgent) .. 4 (low)
KEYS[5]     in-flight sorted set (score: lease deadline, ms)
KEYS[6]     wakeup list
ARGV[1]     job key prefix
ARGV[2]     worker_id
ARGV[3]     now_ms
ARGV[4]     lease_deadline_ms
ARGV[5]     max_jobs
ARGV[6]     id_base: a unique string; a hand-pushed payload gets the id id_base .. '-' .. n
Returns     flat array, two entries per job: id, then the job hash as a field/value array.
            The owner token of each claim is worker_id .. ':' .. the hash's 'claims' field.
]]
local job_prefix = ARGV[1]
local worker_id = ARGV[2]
local now_ms = ARGV[3]
local lease_deadline_ms = ARGV[4]
local max_jobs = tonumber(ARGV[5])
local id_base = ARGV[6]
local inflight_key = KEYS[5]
local wakeup_key = KEYS[6]

local claimed = {}
local count = 0
for priority = 1, 4 do
  while count < max_jobs do
    local entry = redis.call('RPOP', KEYS[priority])
    if not entry then break end
    local job_id = entry
    local job_key = job_prefix .. entry
    -- Anything that is not the id of a stored job was pushed by another program: adopt it.
    if string.len(entry) > 64 or redis.call('EXISTS', job_key) == 0 then
      job_id = id_base .. '-' .. (count + 1)
      job_key = job_prefix .. job_id
      redis.call('HSET', job_key, 'payload', entry, 'priority', priority,
        'attempts', 0, 'enqueued_at_ms', now_ms)
    end
    local claims = redis.call('HINCRBY', job_key, 'claims', 1)
    redis.call('HSET', job_key, 'owner', worker_id .. ':' .. claims, 'started_at_ms', now_ms)
    redis.call('ZADD', inflight_key, lease_deadline_ms, job_id)
    count = count + 1
    claimed[#claimed + 1] = job_id
    claimed[#claimed + 1] = redis.call('HGETALL', job_key)
  end
end

if count == 0 then
  -- Nothing is ready, so any token left is stale: an idle worker must block, not spin.
  redis.call('DEL', wakeup_key)
elseif count == max_jobs and redis.call('LLEN', wakeup_key) == 0 then
  -- More may be ready: pass the word on to the next idle worker.
  redis.call('LPUSH', wakeup_key, '1')
end
return claimed
