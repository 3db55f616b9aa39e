--[[ lift_pauses: end the pauses whose time has come (or that were resumed): a paused priority
is simply forgotten; the held jobs of a paused type go back to the front of their priority
lists, oldest (enqueue order) outermost, at most limit per call, and the pause is forgotten
once none is left.

KEYS[1]     pauses hash ('priority:N' or 'type:T' -> end ms, -1 until resumed, 0 ended)
KEYS[2..5]  shared priority lists 1 .. 4 (a laned type goes to its lane: ready_lists.lua, and
            its lane, unread while paused, is woken)
KEYS[6]     wakeup list
KEYS[7]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     now_ms ('' for Redis's own clock, TIME)
ARGV[3]     limit: at most this many held jobs are moved per call
ARGV[4]     a pause to end now ('priority:N' or 'type:T'; '' for none): a resume
Returns     {moved, pauses left, 1 if ARGV[4] named a pause that was on}
]]
--#include ready_lists
local job_prefix = ARGV[1]
local pauses_key = KEYS[1]
local now_ms = now_or_redis(ARGV[2])
local budget = tonumber(ARGV[3])

local ended_now = 0
if ARGV[4] ~= '' then
  local ends = tonumber(redis.call('HGET', pauses_key, ARGV[4]))
  if ends and (ends == -1 or ends > now_ms) then ended_now = 1 end
  if ends then redis.call('HSET', pauses_key, ARGV[4], 0) end
end
-- Reads: the pauses that ended, and a batch of each ended type's held jobs.
local pauses = redis.call('HGETALL', pauses_key)
local forget, moves, woken = {}, {}, 0
for i = 1, #pauses, 2 do
  local name, ends = pauses[i], tonumber(pauses[i + 1]) or 0
  if ends ~= -1 and ends <= now_ms then
    local kind, job_type = string.match(name, '^(%a+):(.*)$')
    if kind == 'type' then
      if is_laned(job_type) then lanes_ready[lane_wakeup(job_type)] = true end
      local held_key = NS .. KEY_NAMES.HELD .. job_type
      local held = {}
      if budget > 0 then
        held = redis.call('ZRANGE', held_key, 0, budget - 1)
        budget = budget - #held
      end
      for _, job_id in ipairs(held) do
        local priority = tonumber(redis.call('HGET', job_prefix .. job_id, 'priority'))
        moves[#moves + 1] = {held_key, job_id, priority, job_type}
      end
      if redis.call('ZCARD', held_key) == #held then forget[#forget + 1] = name end
    else
      forget[#forget + 1] = name
      woken = 1  -- a priority's jobs are claimable again
    end
  end
end

if woken > 0 then  -- a priority's jobs in the lanes too
  for _, job_type in ipairs(redis.call('HKEYS', LANES_KEY)) do
    lanes_ready[lane_wakeup(job_type)] = true
  end
end

-- Writes. The front of a list is its right end: push the newest first, so the oldest ends
-- outermost and is claimed first.
local moved = 0
for i = #moves, 1, -1 do
  local held_key, job_id, priority, job_type = moves[i][1], moves[i][2], moves[i][3], moves[i][4]
  redis.call('ZREM', held_key, job_id)
  -- A job without a record was deleted while it was held: only its entry is left to drop.
  if priority then
    redis.call('RPUSH', ready_list(2, job_type, priority), job_id)
    stamp(job_prefix .. job_id, 'queued', now_ms)
    moved = moved + 1
  end
end
if #forget > 0 then
  redis.call('HDEL', pauses_key, unpack(forget))
end
if woken > 0 then shared_ready = shared_ready + 1 end
wake_ready(KEYS[6])
return {moved, #pauses / 2 - #forget, ended_now}
