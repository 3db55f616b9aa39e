--[[ promote: move jobs whose time has come from a time-ordered set (retry or scheduled) to the
back of their priority lists. Each due job moves exactly once, whichever worker runs this.
(Parked jobs wait for their rate limit: release_parked.lua lets them out.)

KEYS[1]     source sorted set (score: due_ms)
KEYS[2..5]  shared priority lists 1 .. 4 (a laned type goes to its lane: ready_lists.lua)
KEYS[6]     wakeup list
KEYS[7]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     max_due_ms: move jobs due at or before this ('+inf' moves all; '' for Redis's
            own clock, TIME)
ARGV[3]     limit: at most this many per call
Returns     {moved, next_due_ms}: next_due_ms is the earliest due time left, or -1 when empty
]]
--#include ready_lists
local job_prefix = ARGV[1]
local source_key = KEYS[1]
local wakeup_key = KEYS[6]
local max_due = ARGV[2]
if max_due == '' then
  max_due = redis_now_ms()
end

-- Reads first: the due jobs and their priorities.
local now_ms = max_due == '+inf' and redis_now_ms() or tonumber(max_due)
local due = redis.call('ZRANGEBYSCORE', source_key, '-inf', max_due, 'LIMIT', 0, ARGV[3])
local priorities, types = {}, {}
for i, job_id in ipairs(due) do
  local record = redis.call('HMGET', job_prefix .. job_id, 'priority', 'job_type')
  priorities[i], types[i] = tonumber(record[1]), record[2]
  is_laned(types[i])
end

local moved = 0
for i, job_id in ipairs(due) do
  redis.call('ZREM', source_key, job_id)
  -- A job without a record was deleted while it waited: only its entry is left to drop.
  if priorities[i] then
    redis.call('LPUSH', ready_list(2, types[i], priorities[i]), job_id)
    stamp(job_prefix .. job_id, 'queued', now_ms)
    moved = moved + 1
  end
end
wake_ready(wakeup_key)
local next_due = redis.call('ZRANGE', source_key, 0, 0, 'WITHSCORES')
if next_due[2] then
  return {moved, tonumber(next_due[2])}
end
return {moved, -1}
