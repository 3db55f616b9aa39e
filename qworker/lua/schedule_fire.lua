--[[ schedule_fire: enqueue the jobs of one schedule's due time and move the schedule on, in one
step. A compare-and-set on the schedule's stored next due time (and version) makes exactly one
caller fire each (schedule, due time), however many workers found it due at once; a worker
killed before or after this step loses or doubles nothing.

KEYS[1]     the schedule's hash
KEYS[2]     schedules sorted set (score: next due time in ms; +inf while paused or ended)
KEYS[3..6]  priority lists 1 (urgent) .. 4 (low)
KEYS[7]     wakeup list
KEYS[8]     sequence counter (every job's place in enqueue order)
KEYS[9]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix (the job hash is prefix .. id)
ARGV[2]     now_ms ('' for Redis's own clock): enqueued_at_ms, and what 'due' means
ARGV[3]     schedule name
ARGV[4]     mode: 'due' (what a scheduler found due) or 'trigger' (one job now, by hand: the
            next due time stays, and no-overlap does not apply)
ARGV[5]     'due': the version the caller planned with
ARGV[6]     'due': the next due time (ms) the caller planned with
ARGV[7]     'due': the next due time after this step ('' for none: the schedule has ended)
ARGV[8]     'due': due times passed without a fire (the missed policy)
ARGV[9]     'due': due times the caller dropped for no-overlap
ARGV[10..]  four values per job: id, scheduled_for_ms, the first due time it stands for, and
            how many due times it stands for
Returns     {code, now_ms, n}: code 1 enqueued n jobs; 0 stale (another worker fired this due
            time, or the schedule changed); -1 no such schedule (or paused, for 'due'); 2 not
            due yet by this clock (n: ms to wait); 3 none enqueued, the previous fire's job is
            unfinished (no-overlap); the due time moved on all the same
A job of a type with a lane of its own goes to that lane (lanes.lua), as enqueue sends it.
]]
--#include lanes
local schedule_key, due_key, wakeup_key = KEYS[1], KEYS[2], KEYS[7]
local job_prefix, name, mode = ARGV[1], ARGV[3], ARGV[4]
local now_ms = tonumber(ARGV[2])
if not now_ms then
  local time = redis.call('TIME')
  now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local FINISHED = {done = true, dead = true, canceled = true}

-- Reads first, so a refused step has written nothing.
local s = redis.call('HMGET', schedule_key, 'version', 'next_due_ms', 'paused', 'job_type',
  'payload', 'priority', 'max_retries', 'no_overlap', 'last_job_id')
local version, next_due, paused, job_type, payload = s[1], s[2], s[3], s[4], s[5]
local priority, max_retries, no_overlap, last_job_id = tonumber(s[6]), s[7], s[8], s[9]
if not version or (mode == 'due' and paused == '1') then return {-1, now_ms, 0} end
is_laned(job_type)
local overlapped = 0
local jobs = {}
for i = 10, #ARGV, 4 do jobs[#jobs + 1] = i end
if mode == 'due' then
  if version ~= ARGV[5] or next_due ~= ARGV[6] then return {0, now_ms, 0} end
  local due = tonumber(ARGV[6])
  if due > now_ms then return {2, now_ms, due - now_ms} end
  overlapped = tonumber(ARGV[9])
  if no_overlap == '1' and last_job_id and last_job_id ~= '' and #jobs > 0 then
    local state = redis.call('HGET', job_prefix .. last_job_id, 'state')
    if state and not FINISHED[state] then
      for _, i in ipairs(jobs) do overlapped = overlapped + tonumber(ARGV[i + 3]) end
      jobs = {}
    end
  end
end

local seq = redis.call('INCRBY', KEYS[8], #jobs) - #jobs
for _, i in ipairs(jobs) do
  local job_id, covers = ARGV[i], tonumber(ARGV[i + 3])
  seq = seq + 1
  local fields = {'job_type', job_type, 'priority', priority, 'payload', payload,
    'attempts', 0, 'enqueued_at_ms', now_ms, 'seq', seq, 'state', 'queued',
    'state_at_ms', now_ms, 'schedule', name, 'scheduled_for_ms', ARGV[i + 1]}
  if max_retries and max_retries ~= '' then
    fields[#fields + 1], fields[#fields + 2] = 'max_retries', max_retries
  end
  if covers > 1 then
    fields[#fields + 1], fields[#fields + 2] = 'schedule_first_ms', ARGV[i + 2]
    fields[#fields + 1], fields[#fields + 2] = 'schedule_covers', covers
  end
  redis.call('HSET', job_prefix .. job_id, unpack(fields))
  redis.call('LPUSH', ready_list(3, job_type, priority), job_id)
end
if #jobs > 0 then
  local last = jobs[#jobs]
  redis.call('HSET', schedule_key, 'last_fire_ms', now_ms, 'last_job_id', ARGV[last])
  redis.call('HINCRBY', schedule_key, 'fired', #jobs)
  wake_ready(wakeup_key)
end

if mode == 'due' then
  local new_due = ARGV[7]
  redis.call('HSET', schedule_key, 'next_due_ms', new_due)
  if #jobs > 0 then redis.call('HSET', schedule_key, 'last_due_ms', ARGV[jobs[#jobs] + 1]) end
  if tonumber(ARGV[8]) > 0 then redis.call('HINCRBY', schedule_key, 'missed_count', ARGV[8]) end
  if overlapped > 0 then redis.call('HINCRBY', schedule_key, 'overlapped', overlapped) end
  redis.call('ZADD', due_key, new_due == '' and '+inf' or new_due, name)
  if #jobs == 0 and overlapped > 0 and #ARGV >= 10 then return {3, now_ms, 0} end
end
return {1, now_ms, #jobs}
