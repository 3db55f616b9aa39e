--[[ promote: move jobs whose time has come from a time-ordered set (retry, scheduled or parked)
to their priority lists. Each due job moves exactly once, whichever worker runs this.

KEYS[1]     source sorted set (score: due_ms)
KEYS[2..5]  priority lists 1 .. 4
KEYS[6]     wakeup list
ARGV[1]     job key prefix
ARGV[2]     max_due_ms: move jobs due at or before this ('+inf' moves all)
ARGV[3]     limit: at most this many per call
ARGV[4]     'front' (ahead of the jobs already waiting: parked jobs) or 'back' (behind them)
Returns     {moved, next_due_ms}: next_due_ms is the earliest due time left, or -1 when empty
]]
local job_prefix = ARGV[1]
local source_key = KEYS[1]
local wakeup_key = KEYS[6]
local push = 'LPUSH'
if ARGV[4] == 'front' then push = 'RPUSH' end

local due = redis.call('ZRANGEBYSCORE', source_key, '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local moved = 0
for _, job_id in ipairs(due) do
  redis.call('ZREM', source_key, job_id)
  local priority = tonumber(redis.call('HGET', job_prefix .. job_id, 'priority'))
  if priority then
    redis.call(push, KEYS[1 + priority], job_id)
    moved = moved + 1
  end
end
if moved > 0 and redis.call('LLEN', wakeup_key) == 0 then
  redis.call('LPUSH', wakeup_key, '1')
end
local next_due = redis.call('ZRANGE', source_key, 0, 0, 'WITHSCORES')
if next_due[2] then
  return {moved, tonumber(next_due[2])}
end
return {moved, -1}
