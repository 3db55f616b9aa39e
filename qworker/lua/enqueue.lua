--[[ enqueue: store one or more jobs and make them ready (or scheduled) in one atomic step. A
ready job of a type with a lane of its own goes to that lane (ready_lists.lua), any other to its
shared priority list.

KEYS[1..4]  shared priority lists 1 (urgent) .. 4 (low); producers LPUSH, workers take from
            the right
KEYS[5]     scheduled sorted set (score: run_at_ms)
KEYS[6]     wakeup list
KEYS[7]     sequence counter: every job gets the next number, its place in enqueue order
KEYS[8]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix (the job hash is prefix .. id)
ARGV[2]     now_ms: enqueued_at_ms of every job
ARGV[3..]   seven values per job: id, priority (1-4), job_type, payload (JSON),
            max_retries ('' for the worker's default), run_at_ms ('' for now), and its unique
            key ('' for none) as 'UNTIL:FOR_MS:KEY': UNTIL 'started' or 'finished' (the point
            that releases the key), FOR_MS '' or 0 for until released
Returns     {stored, then a pair per job refused as a duplicate: its index in the batch (from 1),
            the id of the job holding its unique key}. An id that already exists is skipped
            (neither stored nor a duplicate), so sending the same batch twice never doubles a job.
]]
--#include ready_lists
local job_prefix = ARGV[1]
local now_ms = tonumber(ARGV[2])
local scheduled_key = KEYS[5]
local wakeup_key = KEYS[6]
local PER_JOB = 7

-- 'UNTIL:FOR_MS:KEY' -> key, for_ms, until ('' -> nil)
local function unique_of(spec)
  if spec == '' then return nil end
  local until_point, for_ms, key = string.match(spec, '^(%a+):(%d*):(.+)$')
  return key, tonumber(for_ms) or 0, until_point
end

-- Reads first: which ids are new (an id given twice in one batch is stored once), and which
-- unique keys are held (by a stored job, or by an earlier job of this batch).
local new, seen, duplicates, holders = {}, {}, {}, {}
for i = 3, #ARGV, PER_JOB do
  local job_id, unique_key = ARGV[i], (unique_of(ARGV[i + 6]))
  if not seen[job_id] and redis.call('EXISTS', job_prefix .. job_id) == 0 then
    local holder = nil
    if unique_key then
      holder = holders[unique_key]
      if not holder then
        local current = redis.call('GET', NS .. KEY_NAMES.UNIQUE .. unique_key)
        -- A key whose job is gone (cleared) or over no longer holds anything.
        local state = current and redis.call('HGET', job_prefix .. current, 'state')
        if state and state ~= 'done' and state ~= 'dead' and state ~= 'canceled' then
          holder = current
        end
      end
    end
    if holder then
      duplicates[#duplicates + 1] = (i - 3) / PER_JOB + 1
      duplicates[#duplicates + 1] = holder
    else
      new[#new + 1] = i
      if unique_key then holders[unique_key] = job_id end
      is_laned(ARGV[i + 2])
    end
  end
  seen[job_id] = true
end
if #new == 0 then return {0, unpack(duplicates)} end

local seq = redis.call('INCRBY', KEYS[7], #new) - #new
for _, i in ipairs(new) do
  local job_id, priority, max_retries = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 4]
  local run_at_ms = tonumber(ARGV[i + 5])
  local unique_key, unique_for_ms, unique_until = unique_of(ARGV[i + 6])
  local job_key = job_prefix .. job_id
  local scheduled = run_at_ms and run_at_ms > now_ms
  seq = seq + 1
  local fields = {'job_type', ARGV[i + 2], 'priority', priority, 'payload', ARGV[i + 3],
    'attempts', 0, 'enqueued_at_ms', now_ms, 'seq', seq,
    'state', scheduled and 'scheduled' or 'queued', 'state_at_ms', now_ms}
  if max_retries ~= '' then
    fields[#fields + 1], fields[#fields + 2] = 'max_retries', max_retries
  end
  if scheduled then
    fields[#fields + 1], fields[#fields + 2] = 'run_at_ms', run_at_ms
  end
  if unique_key then
    fields[#fields + 1], fields[#fields + 2] = 'unique_key', unique_key
    fields[#fields + 1], fields[#fields + 2] = 'unique_until', unique_until
  end
  redis.call('HSET', job_key, unpack(fields))
  if unique_key then
    if unique_for_ms > 0 then
      redis.call('SET', NS .. KEY_NAMES.UNIQUE .. unique_key, job_id, 'PX', unique_for_ms)
    else
      redis.call('SET', NS .. KEY_NAMES.UNIQUE .. unique_key, job_id)
    end
  end
  if scheduled then
    redis.call('ZADD', scheduled_key, run_at_ms, job_id)
  else
    redis.call('LPUSH', ready_list(1, ARGV[i + 2], priority), job_id)
  end
end

wake_ready(wakeup_key)
return {#new, unpack(duplicates)}
