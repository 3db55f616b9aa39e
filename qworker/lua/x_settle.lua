--[[ x_settle: what one X response said, for every worker: the limits its x-rate-limit-*,
x-user-limit-24hour-* and x-app-limit-24hour-* headers report (a limit used up blocks the
shared limiter until its reset), and the spend given back for a post X did not make.

KEYS[1]     X's limits: hash of limit name -> 'remaining|reset_ms'
KEYS[2]     blocked_until key of the tweet rate key (ms), as rate_block sets it
KEYS[3]     spend hash of the month the post was counted in
KEYS[4]     migration fence (never exists; see keys.py)
ARGV[1]     now_ms
ARGV[2]     refund_micro_usd: the price to give back ('0' for none)
ARGV[3]     spend counter to give back: 'posts' or 'posts_with_url'
ARGV[4..]   triples: limit name, remaining, reset_ms
Returns     the blocked_until_ms now in force, or 0 for none
]]
local now_ms = tonumber(ARGV[1])
local refund = tonumber(ARGV[2])
local KEEP_LIMITS_MS = 2 * 86400000  -- X's longest window is a day

if refund > 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'micro_usd', -refund)
  redis.call('HINCRBY', KEYS[3], ARGV[3], -1)
end

local block_until = 0
for i = 4, #ARGV, 3 do
  local name, remaining, reset_ms = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local current = redis.call('HGET', KEYS[1], name)
  local known_remaining, known_reset = nil, nil
  if current then
    known_remaining, known_reset = string.match(current, '^(-?%d+)|(%d+)$')
    known_remaining, known_reset = tonumber(known_remaining), tonumber(known_reset)
  end
  -- Answers arrive out of order: within one window the lowest remaining is the latest news.
  if known_reset and known_reset == reset_ms then
    remaining = math.min(remaining, known_remaining)
  end
  if not known_reset or reset_ms >= known_reset then
    redis.call('HSET', KEYS[1], name, remaining .. '|' .. reset_ms)
    if remaining <= 0 and reset_ms > now_ms then
      block_until = math.max(block_until, reset_ms)
    end
  end
end
if #ARGV >= 4 then
  redis.call('PEXPIRE', KEYS[1], KEEP_LIMITS_MS)
end

local current_block = tonumber(redis.call('GET', KEYS[2])) or 0
if block_until > current_block then
  redis.call('SET', KEYS[2], block_until, 'PX', block_until - now_ms)
  return block_until
end
return current_block > now_ms and current_block or 0
