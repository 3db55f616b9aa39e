--[[ x_gate: X's side of one post, checked and taken in one step right before the request goes
out: the 15-minute window, the limits X's headers last reported, and the month's budget. The
shared limiter (rate_reserve) has already reserved this attempt's slot in the log.

KEYS[1]     execution log sorted set of the tweet rate key (this attempt's reservation in it)
KEYS[2]     X's limits as its headers last said: hash of limit name -> 'remaining|reset_ms'
KEYS[3]     spend hash of the month: micro_usd, posts, posts_with_url
KEYS[4]     migration fence (never exists; see keys.py)
ARGV[1]     now_ms
ARGV[2]     max_per_15_minutes ('' for no such window)
ARGV[3]     price_micro_usd of this post ('0': spend is not counted)
ARGV[4]     budget_micro_usd of the month ('' for no budget)
ARGV[5]     month_end_ms: when the month turns (and the budget with it)
ARGV[6]     spend counter of this post: 'posts' or 'posts_with_url'
Returns     {0, 0}: go (the spend is counted, each reported limit's remaining taken one down);
            or a refusal and when it ends: {1, until_ms} the 15-minute window is full,
            {2, until_ms} X said a limit is used up, {3, until_ms} the budget is spent
]]
local now_ms = tonumber(ARGV[1])
local QUARTER_HOUR_MS = 900000
local KEEP_SPEND_MS = 400 * 86400000  -- a month's spend stays readable for about a year
local price = tonumber(ARGV[3])

if ARGV[2] ~= '' then
  local cap = tonumber(ARGV[2])
  local since = now_ms - QUARTER_HOUR_MS
  local used = redis.call('ZCOUNT', KEYS[1], '(' .. since, '+inf')
  if used > cap then
    -- The window admits this post once enough earlier entries have left it.
    local entry = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. since, '+inf', 'WITHSCORES',
      'LIMIT', math.max(used - cap - 1, 0), 1)
    return {1, tonumber(entry[2]) + QUARTER_HOUR_MS}
  end
end

local limits = redis.call('HGETALL', KEYS[2])
local live, used_up = {}, 0
for i = 1, #limits, 2 do
  local remaining, reset_ms = string.match(limits[i + 1], '^(-?%d+)|(%d+)$')
  remaining, reset_ms = tonumber(remaining), tonumber(reset_ms)
  if reset_ms and reset_ms > now_ms then
    if remaining <= 0 then
      used_up = math.max(used_up, reset_ms)
    end
    live[#live + 1] = {limits[i], remaining, reset_ms}
  end
end
if used_up > 0 then
  return {2, used_up}
end

if price > 0 and ARGV[4] ~= '' then
  local spent = tonumber(redis.call('HGET', KEYS[3], 'micro_usd')) or 0
  if spent + price > tonumber(ARGV[4]) then
    return {3, tonumber(ARGV[5])}
  end
end

-- Writes: this post takes one of each limit X reported, and counts in the month's spend.
for _, limit in ipairs(live) do
  redis.call('HSET', KEYS[2], limit[1], (limit[2] - 1) .. '|' .. limit[3])
end
if price > 0 then
  redis.call('HINCRBY', KEYS[3], 'micro_usd', price)
  redis.call('HINCRBY', KEYS[3], ARGV[6], 1)
  redis.call('PEXPIREAT', KEYS[3], tonumber(ARGV[5]) + KEEP_SPEND_MS)
end
return {0, 0}
