--[[ rate_reserve: check every limit of one rate-limit key and, if all allow it, reserve a slot,
in one atomic step, so no interleaving of workers can exceed a limit. Windows are rolling.
Time is Redis's own (TIME), so workers whose clocks disagree still share one timeline.

KEYS[1]     execution log sorted set of this key (score: ms; members unique per reservation)
KEYS[2]     blocked_until key (ms), set when the remote side answered "too many requests"
KEYS[3]     hash of every rate-limit key to its limits 'day|hour|interval_ms' (for stats)
KEYS[4]     migration fence (never exists; see keys.py)
ARGV[1]     rate key name
ARGV[2]     now_ms ('' for Redis's own clock, TIME)
ARGV[3]     member: a unique name for this reservation
ARGV[4]     max_per_day ('' for no limit)
ARGV[5]     max_per_hour ('' for no limit)
ARGV[6]     min_interval_ms ('0' for none)
Returns     {1, now_ms} reserved, or {0, next_allowed_ms}: when every limit allows a job again
]]
local log_key = KEYS[1]
local DAY_MS, HOUR_MS = 86400000, 3600000
local now_ms = tonumber(ARGV[2])
if not now_ms then
  local time = redis.call('TIME')
  now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local min_interval_ms = tonumber(ARGV[6])

-- When a window of length window_ms holding `limit` entries opens again.
local function window_opens_at(limit, window_ms)
  local since = now_ms - window_ms
  local used = redis.call('ZCOUNT', log_key, '(' .. since, '+inf')
  if used < limit then return now_ms end
  if limit == 0 then return now_ms + window_ms end
  local oldest = redis.call('ZRANGEBYSCORE', log_key, '(' .. since, '+inf',
    'WITHSCORES', 'LIMIT', used - limit, 1)
  return tonumber(oldest[2]) + window_ms
end

local next_allowed = now_ms
local blocked_until = tonumber(redis.call('GET', KEYS[2]))
if blocked_until and blocked_until > next_allowed then next_allowed = blocked_until end
if ARGV[4] ~= '' then
  next_allowed = math.max(next_allowed, window_opens_at(tonumber(ARGV[4]), DAY_MS))
end
if ARGV[5] ~= '' then
  next_allowed = math.max(next_allowed, window_opens_at(tonumber(ARGV[5]), HOUR_MS))
end
if min_interval_ms > 0 then
  local last = redis.call('ZRANGE', log_key, -1, -1, 'WITHSCORES')
  if last[2] then
    next_allowed = math.max(next_allowed, tonumber(last[2]) + min_interval_ms)
  end
end

-- Writes. The log keeps what the longest limit needs: a day, or a longer minimum interval.
local keep_ms = math.max(DAY_MS, min_interval_ms)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4] .. '|' .. ARGV[5] .. '|' .. ARGV[6])
redis.call('ZREMRANGEBYSCORE', log_key, '-inf', '(' .. (now_ms - keep_ms))
if next_allowed > now_ms then
  return {0, next_allowed}
end
redis.call('ZADD', log_key, now_ms, ARGV[3])
redis.call('PEXPIRE', log_key, keep_ms + HOUR_MS)
return {1, now_ms}
