--[[ requeue_dead: move jobs from the dead-letter queue back to their priority lists, with their
attempts reset and their error cleared. A job with dependencies waits again for those not done;
the dependents a job's failure dead-lettered come back to waiting (repair.lua).

KEYS[1]     dead-letter sorted set
KEYS[2..5]  shared priority lists 1 .. 4 (a laned type goes to its lane: lanes.lua)
KEYS[6]     wakeup list
KEYS[7]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     priority for every requeued job ('' keeps each job's own)
ARGV[3]     '1' to requeue every dead job (ARGV[4..] ignored), '0' for the ids given
ARGV[4]     now_ms
ARGV[5..]   job ids
Returns     array of the ids requeued (an id given but not in the dead-letter queue is left out)
]]
--#include lanes
local job_prefix = ARGV[1]
local dead_key = KEYS[1]
local wakeup_key = KEYS[6]
local new_priority = tonumber(ARGV[2])

local job_ids = {}
if ARGV[3] == '1' then
  job_ids = redis.call('ZRANGE', dead_key, 0, -1)
else
  for i = 5, #ARGV do job_ids[#job_ids + 1] = ARGV[i] end
end

-- Reads first: which ids are dead jobs with a record, and their priorities.
local found, seen = {}, {}
for _, job_id in ipairs(job_ids) do
  if not seen[job_id] and redis.call('ZSCORE', dead_key, job_id) then
    seen[job_id] = true
    local record = redis.call('HMGET', job_prefix .. job_id, 'priority', 'job_type', 'deps',
      'has_dependents', 'on_dep_fail')
    local priority = record[1]
    local exists = priority or redis.call('EXISTS', job_prefix .. job_id) == 1
    is_laned(record[2])
    found[#found + 1] = {job_id, exists, tonumber(priority), record[2], record[3], record[4],
      record[5]}
  end
end

local requeued = {}
for _, entry in ipairs(found) do
  local job_id, exists = entry[1], entry[2]
  local job_key = job_prefix .. job_id
  redis.call('ZREM', dead_key, job_id)
  if exists then
    local priority = new_priority or entry[3] or 4
    redis.call('HSET', job_key, 'attempts', 0, 'priority', priority)
    redis.call('HDEL', job_key, 'error', 'failed_at_ms', 'owner', 'finished_at_ms')
    redis.call('HDEL', job_key, 'dep_failed')
    local now_ms = now_or_redis(ARGV[4])
    if entry[5] then
      -- Requeued by hand: it runs as soon as its dependencies allow, as any requeued job does,
      -- without its delay or start time again.
      wait_or_ready(job_key, job_id, (open_deps(entry[5], entry[7])), now_ms, true)
    else
      stamp(job_key, 'queued', now_ms)
      redis.call('LPUSH', ready_list(2, entry[4], priority), job_id)
    end
    if entry[6] then revive_dependents(job_id, now_ms) end
    requeued[#requeued + 1] = job_id
  end
end
wake_ready(wakeup_key)
return requeued
