--[[ enqueue: store one or more jobs and make them ready (or scheduled) in one atomic step.

KEYS[1..4]  priority lists 1 (urgent) .. 4 (low); producers LPUSH, workers take from the right
KEYS[5]     scheduled sorted set (score: run_at_ms)
KEYS[6]     wakeup list (at most one token wakes an idle worker)
ARGV[1]     job key prefix (the job hash is prefix .. id)
ARGV[2]     now_ms: enqueued_at_ms of every job
ARGV[3..]   six values per job: id, priority (1-4), job_type, payload (JSON),
            max_retries ('' for the worker's default), run_at_ms ('' for now)
Returns     the number of jobs stored (an id that already exists is skipped, so sending the
            same batch twice never doubles a job)
]]
local job_prefix = ARGV[1]
local now_ms = tonumber(ARGV[2])
local scheduled_key = KEYS[5]
local wakeup_key = KEYS[6]

local made_ready = 0
local stored = 0
local function store(job_id, priority, job_type, payload, max_retries, run_at_ms)
  local job_key = job_prefix .. job_id
  if redis.call('EXISTS', job_key) == 1 then return end
  stored = stored + 1
  redis.call('HSET', job_key, 'job_type', job_type, 'priority', priority,
    'payload', payload, 'attempts', 0, 'enqueued_at_ms', now_ms)
  if max_retries ~= '' then
    redis.call('HSET', job_key, 'max_retries', max_retries)
  end
  if run_at_ms and run_at_ms > now_ms then
    redis.call('HSET', job_key, 'run_at_ms', run_at_ms)
    redis.call('ZADD', scheduled_key, run_at_ms, job_id)
  else
    redis.call('LPUSH', KEYS[priority], job_id)
    made_ready = made_ready + 1
  end
end

for i = 3, #ARGV, 6 do
  store(ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
    tonumber(ARGV[i + 5]))
end

if made_ready > 0 and redis.call('LLEN', wakeup_key) == 0 then
  redis.call('LPUSH', wakeup_key, '1')
end
return stored
