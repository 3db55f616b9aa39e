--[[ enqueue: store one or more jobs and make them ready (or scheduled) in one atomic step.

KEYS[1..4]  priority lists 1 (urgent) .. 4 (low); producers LPUSH, workers take from the right
KEYS[5]     scheduled sorted set (score: run_at_ms)
KEYS[6]     wakeup list
KEYS[7]     sequence counter: every job gets the next number, its place in enqueue order
KEYS[8]     migration fence (never exists; see keys.py)
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

-- Reads first: which ids are new (an id given twice in one batch is stored once).
local new, seen = {}, {}
for i = 3, #ARGV, 6 do
  local job_id = ARGV[i]
  if not seen[job_id] and redis.call('EXISTS', job_prefix .. job_id) == 0 then
    new[#new + 1] = i
  end
  seen[job_id] = true
end
if #new == 0 then return 0 end

local seq = redis.call('INCRBY', KEYS[7], #new) - #new
local made_ready = 0
for _, i in ipairs(new) do
  local job_id, priority, max_retries = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 4]
  local run_at_ms = tonumber(ARGV[i + 5])
  local job_key = job_prefix .. job_id
  seq = seq + 1
  redis.call('HSET', job_key, 'job_type', ARGV[i + 2], 'priority', priority,
    'payload', ARGV[i + 3], 'attempts', 0, 'enqueued_at_ms', now_ms, 'seq', seq)
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

if made_ready > 0 and redis.call('LLEN', wakeup_key) == 0 then
  redis.call('LPUSH', wakeup_key, '1')
end
return #new
