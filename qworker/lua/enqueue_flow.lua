--[[ enqueue_flow: store a flow of jobs, some waiting for others, in one atomic step: all of it
or (an unknown dependency, an id taken) none of it. A dependency is a job stored earlier, or
one before it in this call, so no flow has a cycle. A job whose dependencies are all done is
queued at once; one with a dependency dead or canceled goes to the dead-letter queue with the
reason ('fail') or does not wait for it ('run').

KEYS[1..4]  shared priority lists 1 .. 4 (a laned type goes to its lane: lanes.lua)
KEYS[5]     waiting sorted set (score: the time a job stops waiting, its dep-timeout)
KEYS[6]     wakeup list
KEYS[7]     sequence counter
KEYS[8]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     now_ms: enqueued_at_ms of every job
ARGV[3..]   ten values per job: id, priority, job_type, payload, max_retries ('' for the
            worker's default), its dependencies' ids (comma-separated, '' for none),
            on_dep_fail ('fail' or 'run'), dep_timeout_ms, ready_delay_ms and not_before_ms
            (0 for none: when its dependencies are done, it is scheduled that long after, or
            not before that time; see make_ready)
Returns     {stored} or {-1, an unknown dependency's id} or {-2, an id already taken}
]]
--#include lanes
local job_prefix = ARGV[1]
local now_ms = tonumber(ARGV[2])
local PER_JOB = 10

-- Reads first: every dependency's state (this batch's are new, so not done).
local states = {}
for i = 3, #ARGV, PER_JOB do
  local job_id = ARGV[i]
  if states[job_id] or redis.call('EXISTS', job_prefix .. job_id) == 1 then
    return {-2, job_id}
  end
  for _, dep in ipairs(split_ids(ARGV[i + 5])) do
    if not states[dep] then
      states[dep] = redis.call('HGET', job_prefix .. dep, 'state')
      if not states[dep] then return {-1, dep} end
    end
  end
  states[job_id] = 'new'
  is_laned(ARGV[i + 2])
end

local seq = redis.call('INCRBY', KEYS[7], (#ARGV - 2) / PER_JOB) - (#ARGV - 2) / PER_JOB
for i = 3, #ARGV, PER_JOB do
  local job_id, priority, deps = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 5]
  local job_key = job_prefix .. job_id
  seq = seq + 1
  local left, failed = 0, nil
  for _, dep in ipairs(split_ids(deps)) do
    local state = states[dep]
    local has_failed = state == 'dead' or state == 'canceled'
    if has_failed and not failed then failed = dep end
    if state ~= 'done' and not (has_failed and ARGV[i + 6] == 'run') then left = left + 1 end
    local dep_key = job_prefix .. dep
    redis.call('SADD', NS .. KEY_NAMES.DEPENDENTS .. dep, job_id)
    redis.call('HSET', dep_key, 'has_dependents', '1')
    redis.call('HINCRBY', dep_key, 'dependents_open', 1)
    -- A finished dependency's record (its result) stays until this job has run.
    redis.call('PERSIST', dep_key)
    redis.call('PERSIST', NS .. KEY_NAMES.DEPENDENTS .. dep)
  end
  redis.call('HSET', job_key, 'job_type', ARGV[i + 2], 'priority', priority, 'payload',
    ARGV[i + 3], 'attempts', 0, 'enqueued_at_ms', now_ms, 'seq', seq, 'state', 'waiting',
    'state_at_ms', now_ms)
  if ARGV[i + 4] ~= '' then redis.call('HSET', job_key, 'max_retries', ARGV[i + 4]) end
  local timed = ARGV[i + 8] ~= '0' or ARGV[i + 9] ~= '0'
  if timed then
    redis.call('HSET', job_key, 'ready_delay_ms', ARGV[i + 8], 'not_before_ms', ARGV[i + 9])
  end
  if deps == '' and timed then
    make_ready(job_key, job_id, now_ms)  -- scheduled, or queued if its time has come
  elseif deps == '' then
    redis.call('LPUSH', ready_list(1, ARGV[i + 2], priority), job_id)
    stamp(job_key, 'queued', now_ms)
  else
    redis.call('HSET', job_key, 'deps', deps, 'deps_left', left, 'on_dep_fail', ARGV[i + 6],
      'dep_timeout_ms', ARGV[i + 7])
    redis.call('ZADD', KEYS[5], now_ms + tonumber(ARGV[i + 7]), job_id)
    if failed and ARGV[i + 6] ~= 'run' then
      dead_letter_waiting(job_key, job_id, 'dependency ' .. failed .. ' ' .. states[failed],
        failed, now_ms)
      states[job_id] = 'dead'
    elseif left == 0 then
      make_ready(job_key, job_id, now_ms)
    end
  end
end
wake_ready(KEYS[6])
return {(#ARGV - 2) / PER_JOB}
