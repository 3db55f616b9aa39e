--[[ dependencies (included by lanes.lua): what ending a job in a flow does, and how a dependent
comes back when its failed dependency is requeued. For a dependent D of a job A:
  D's record: deps (A's id among others, comma-separated), deps_left (dependencies not done
  yet), on_dep_fail ('fail' or 'run'), dep_timeout_ms; state 'waiting' while it waits, in the
  WAITING sorted set scored by the time it stops waiting (the dep-timeout).
  A's record: has_dependents, dependents_open (dependents not done or canceled yet: A's record
  and result are kept while any is open); its dependents' ids in the set DEPENDENTS .. A.
When A ends, every job its end reaches is settled in this same step (level after level, from a
work list, not by recursion, so a deep flow cannot overflow the Lua stack). Unlike the rest of
a script, this reads after writing (a dependent's record, once its dependency has moved): only
a job in a flow gets here, and what it reads is a record of the same namespace, same slot.
]]
local WAITING_KEY = NS .. KEY_NAMES.WAITING
local flow_work, flow_draining = {}, false

local function split_ids(text)
  local ids = {}
  for id in string.gmatch(text or '', '[^,]+') do ids[#ids + 1] = id end
  return ids
end

local function job_key_of(job_id) return NS .. KEY_NAMES.JOB_DATA .. job_id end

-- A finished record (and its dependents set) that nothing needs any more: kept keep_ms.
local function let_go(job_key, job_id, keep_ms)
  local set_key = NS .. KEY_NAMES.DEPENDENTS .. job_id
  if keep_ms <= 0 then
    redis.call('DEL', job_key, set_key)
  else
    redis.call('PEXPIRE', job_key, keep_ms)
    redis.call('PEXPIRE', set_key, keep_ms)
  end
end

-- A waiting job all of whose dependencies are through: queued at its own priority, or scheduled
-- when it was given a delay (counted from now) or a start time (not before) still to come,
-- unless `at_once` (an operator's requeue: now, as any requeued job).
local function make_ready(job_key, job_id, now_ms, at_once)
  local record = redis.call('HMGET', job_key, 'priority', 'job_type', 'ready_delay_ms',
    'not_before_ms')
  local due_ms = math.max(now_ms + (tonumber(record[3]) or 0), tonumber(record[4]) or 0)
  if due_ms > now_ms and not at_once then
    redis.call('ZREM', WAITING_KEY, job_id)
    stamp(job_key, 'scheduled', now_ms)
    redis.call('HSET', job_key, 'run_at_ms', due_ms)
    redis.call('ZADD', NS .. KEY_NAMES.SCHEDULED, due_ms, job_id)
    return
  end
  local priority = tonumber(record[1]) or 4
  local list, wakeup = NS .. KEY_NAMES.PRIORITY .. priority, NS .. KEY_NAMES.WAKEUP
  if is_laned(record[2]) then
    list, wakeup = lane_list(record[2], priority), lane_wakeup(record[2])
  end
  redis.call('ZREM', WAITING_KEY, job_id)
  stamp(job_key, 'queued', now_ms)
  redis.call('LPUSH', list, job_id)
  if redis.call('LLEN', wakeup) == 0 then redis.call('LPUSH', wakeup, '1') end
end

-- A waiting job that will never run: to the dead-letter queue with the reason. `cause` (a
-- dependency's id, or 'timeout') lets a requeue of that dependency bring it back.
local function dead_letter_waiting(job_key, job_id, reason, cause, now_ms)
  local fields = redis.call('HMGET', job_key, unpack(END_FIELDS))
  local error_json = cjson.encode({type = 'DependencyFailed', message = reason, traceback = ''})
  redis.call('ZREM', WAITING_KEY, job_id)
  redis.call('HSET', job_key, 'error', error_json, 'failed_at_ms', now_ms, 'dep_failed', cause)
  redis.call('ZADD', NS .. KEY_NAMES.DEAD_LETTER, now_ms, job_id)
  redis.call('HINCRBY', NS .. KEY_NAMES.STATS, 'dead', 1)
  end_job(job_key, job_id, 'dead', now_ms, 0, end_fields_at(fields, 1))
end

-- A dependent that will never run again (done, canceled, or deleted for good) no longer keeps
-- its dependencies' records: each one finished and needed by no other dependent is let go.
local function release_dependencies(deps, keep_ms)
  for _, dep in ipairs(split_ids(deps)) do
    local dep_key = job_key_of(dep)
    local dep_state = redis.call('HGET', dep_key, 'state')
    if dep_state and redis.call('HINCRBY', dep_key, 'dependents_open', -1) <= 0
        and (dep_state == 'done' or dep_state == 'canceled')
        and redis.call('PTTL', dep_key) == -1 then
      let_go(dep_key, dep, keep_ms)
    end
  end
end

-- The waiting dependents of a job that ended in `state`: one done frees a place in each, and
-- one failed dead-letters those that fail with it and frees a place in those that run anyway.
-- `failed_before`: the job had already failed (a dead job now deleted), and a dependent that
-- runs anyway stopped counting it then; only those that still wait for it (requeued since)
-- are dead-lettered.
local function settle_dependents(job_id, state, now_ms, failed_before)
  for _, dependent in ipairs(redis.call('SMEMBERS', NS .. KEY_NAMES.DEPENDENTS .. job_id)) do
    local d_key = job_key_of(dependent)
    local d = redis.call('HMGET', d_key, 'state', 'on_dep_fail')
    if d[1] == 'waiting' then
      if state == 'done' or d[2] == 'run' then
        if not failed_before and redis.call('HINCRBY', d_key, 'deps_left', -1) <= 0 then
          make_ready(d_key, dependent, now_ms)
        end
      else
        dead_letter_waiting(d_key, dependent, 'dependency ' .. job_id .. ' ' .. state, job_id,
          now_ms)
      end
    end
  end
end

local function settle_one(job_key, job_id, state, now_ms, keep_ms)
  local record = redis.call('HMGET', job_key, 'deps', 'has_dependents', 'dependents_open')
  -- Done or canceled, it lets go of its dependencies' records; dead, it may yet come back.
  if record[1] and state ~= 'dead' then release_dependencies(record[1], keep_ms) end
  if record[2] then settle_dependents(job_id, state, now_ms, false) end
  if state ~= 'dead' then
    if (tonumber(record[3]) or 0) > 0 then
      redis.call('PERSIST', job_key)  -- its result is read by dependents still to run
    else
      let_go(job_key, job_id, keep_ms)
    end
  end
end

flow_ended = function(job_key, job_id, state, now_ms, keep_ms)
  flow_work[#flow_work + 1] = {job_key, job_id, state}
  if flow_draining then return end
  flow_draining = true
  local i = 1
  while i <= #flow_work do
    local entry = flow_work[i]
    settle_one(entry[1], entry[2], entry[3], now_ms, keep_ms)
    i = i + 1
  end
  flow_work, flow_draining = {}, false
end

-- Delete a job's record for good (a dead job deleted or trimmed, a queue cleared). A job in a
-- flow that had not finished ends first, as 'deleted': it lets go of its dependencies' records
-- (or they would be kept for it for ever), and its waiting dependents go on at once as after a
-- failed dependency (to the dead-letter queue with the reason 'dependency <id> deleted', or to
-- run anyway), not at their dep-timeout. A dead job's dependents were settled when it died:
-- only one requeued since, waiting for it again, is dead-lettered. Such an end may make jobs
-- ready or dead: a caller that trims queues does so before it deletes records. (pcall: a key
-- that is not a job's hash is deleted all the same, as a clear has always done.)
local function delete_record(job_key, job_id, keep_ms)
  local record = redis.pcall('HMGET', job_key, 'deps', 'has_dependents', 'state')
  local state = not record.err and record[3]
  if state == 'dead' then
    if record[1] then release_dependencies(record[1], keep_ms) end
    if record[2] then settle_dependents(job_id, 'deleted', redis_now_ms(), true) end
  elseif state and (record[1] or record[2]) and state ~= 'done' and state ~= 'canceled' then
    flow_ended(job_key, job_id, 'deleted', redis_now_ms(), keep_ms)
  end
  redis.call('DEL', job_key, NS .. KEY_NAMES.DEPENDENTS .. job_id)
end

--#include repair
