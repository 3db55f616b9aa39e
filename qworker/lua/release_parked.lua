--[[ release_parked: let rate-limited jobs out of the parked set when their limit reopens, only
as many of each rate-limit key as its limiter admits now, oldest (enqueue order) first, to the
front of their priority lists. The rest wait again, until the limiter's next opening, so an
opening costs work in proportion to what it admits, not to what is parked.

KEYS[1]     parked sorted set (score: due_ms)
KEYS[2..5]  shared priority lists 1 .. 4 (a laned type goes to its lane: ready_lists.lua)
KEYS[6]     wakeup list
KEYS[7]     hash of every rate-limit key to its limits 'day|hour|interval_ms'
KEYS[8]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     rate key prefix (execution log: prefix .. key; block: prefix .. key .. ':blocked_until')
ARGV[3]     now_ms ('' for Redis's own clock, TIME)
ARGV[4]     limit: at most this many due jobs are looked at per call
Returns     {released, next_due_ms}: next_due_ms is the earliest due time left, or -1 when empty
]]
--#include ready_lists
local parked_key, wakeup_key = KEYS[1], KEYS[6]
local job_prefix, rate_prefix = ARGV[1], ARGV[2]
local DAY_MS, HOUR_MS = 86400000, 3600000
local now_ms = now_or_redis(ARGV[3])

-- How many more a window of window_ms allows now, and when it allows one more once `extra`
-- further jobs have taken slots now (the entry that must leave the window first, plus its
-- length).
local function window(log_key, limit, window_ms, extra)
  local since = now_ms - window_ms
  local used = redis.call('ZCOUNT', log_key, '(' .. since, '+inf')
  local free = limit - used
  local over = used + extra - limit
  if over < 0 then return free, now_ms end
  if over >= used then return free, now_ms + window_ms end
  local entry = redis.call('ZRANGEBYSCORE', log_key, '(' .. since, '+inf', 'WITHSCORES',
    'LIMIT', over, 1)
  return free, tonumber(entry[2]) + window_ms
end

-- {how many jobs of this key may go now, when the key admits the next one after those}.
local function admission(rate_key, waiting)
  local limits = redis.call('HGET', KEYS[7], rate_key)
  if not limits then return waiting, now_ms end
  local day, hour, interval = string.match(limits, '^([^|]*)|([^|]*)|([^|]*)$')
  local log_key = rate_prefix .. rate_key
  local free, opens = waiting, now_ms
  local blocked_until = tonumber(redis.call('GET', log_key .. ':blocked_until'))
  if blocked_until and blocked_until > now_ms then return 0, blocked_until end
  interval = tonumber(interval) or 0
  if interval > 0 then
    local last = redis.call('ZRANGE', log_key, -1, -1, 'WITHSCORES')
    if last[2] and tonumber(last[2]) + interval > now_ms then
      return 0, tonumber(last[2]) + interval
    end
    free = math.min(free, 1)
  end
  for _, pair in ipairs({{tonumber(day), DAY_MS}, {tonumber(hour), HOUR_MS}}) do
    if pair[1] then
      local window_free = window(log_key, pair[1], pair[2], 0)
      free = math.max(math.min(free, window_free), 0)
    end
  end
  -- When the next one after the `free` released now may go.
  if interval > 0 and free > 0 then opens = now_ms + interval end
  for _, pair in ipairs({{tonumber(day), DAY_MS}, {tonumber(hour), HOUR_MS}}) do
    if pair[1] then
      local _, window_opens = window(log_key, pair[1], pair[2], free)
      opens = math.max(opens, window_opens)
    end
  end
  return free, opens
end

-- Reads: the due jobs, their records, and what each rate-limit key admits.
local due = redis.call('ZRANGEBYSCORE', parked_key, '-inf', now_ms, 'LIMIT', 0, ARGV[4])
local groups, order, orphans = {}, {}, {}
for _, job_id in ipairs(due) do
  local record = redis.call('HMGET', job_prefix .. job_id, 'priority', 'seq', 'rate_key',
    'job_type')
  is_laned(record[4])
  if not record[1] then
    orphans[#orphans + 1] = job_id  -- deleted while it waited
  else
    local rate_key = record[3] or ''
    if not groups[rate_key] then
      groups[rate_key] = {}
      order[#order + 1] = rate_key
    end
    local jobs = groups[rate_key]
    jobs[#jobs + 1] = {id = job_id, priority = tonumber(record[1]), seq = tonumber(record[2]) or 0,
      job_type = record[4]}
  end
end
local released, waiting_again = {}, {}
for _, rate_key in ipairs(order) do
  local jobs = groups[rate_key]
  table.sort(jobs, function(a, b) return a.seq < b.seq end)
  local free, opens = #jobs, now_ms
  if rate_key ~= '' then free, opens = admission(rate_key, #jobs) end
  for i, job in ipairs(jobs) do
    if i <= free then
      released[#released + 1] = job
    else
      waiting_again[#waiting_again + 1] = {job.id, opens}
    end
  end
end

-- Writes. The front of a list is its right end: push the newest first, so the oldest ends
-- outermost and is claimed first.
for _, job_id in ipairs(orphans) do redis.call('ZREM', parked_key, job_id) end
table.sort(released, function(a, b) return a.seq > b.seq end)
for _, job in ipairs(released) do
  redis.call('ZREM', parked_key, job.id)
  redis.call('RPUSH', ready_list(2, job.job_type, job.priority), job.id)
  stamp(job_prefix .. job.id, 'queued', now_ms)
end
for _, entry in ipairs(waiting_again) do
  redis.call('ZADD', parked_key, 'XX', entry[2], entry[1])
end
wake_ready(wakeup_key)
local next_due = redis.call('ZRANGE', parked_key, 0, 0, 'WITHSCORES')
if next_due[2] then
  return {#released, tonumber(next_due[2])}
end
return {#released, -1}
