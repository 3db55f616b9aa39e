--[[ defer: move an in-flight job to a time-ordered set (the retry set after a failure, or the
parked set while its rate limit is closed), if this worker still owns it.

KEYS[1]     in-flight sorted set
KEYS[2]     target sorted set: retry or parked (score: due_ms)
KEYS[3]     statistics hash
KEYS[4]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     job id
ARGV[3]     owner token
ARGV[4]     due_ms
ARGV[5]     attempts after this one ('' when the attempt does not count, as when parked)
ARGV[6]     error JSON ('' for none)
ARGV[7]     now_ms
ARGV[8]     rate-limit key the job waits for ('' for none): release_parked.lua lets out only
            as many jobs of one key as its limiter admits
Returns     1 moved, 0 not owned (nothing changed)
]]
local inflight_key = KEYS[1]
local target_key = KEYS[2]
local stats_key = KEYS[3]
local job_id = ARGV[2]
local job_key = ARGV[1] .. job_id
local attempts = ARGV[5]
local error_json = ARGV[6]

if redis.call('HGET', job_key, 'owner') ~= ARGV[3] then
  return 0
end
redis.call('ZREM', inflight_key, job_id)
redis.call('HDEL', job_key, 'owner')
if attempts ~= '' then
  redis.call('HSET', job_key, 'attempts', attempts, 'failed_at_ms', ARGV[7])
  redis.call('HINCRBY', stats_key, 'failed', 1)
end
if error_json ~= '' then
  redis.call('HSET', job_key, 'error', error_json)
end
if ARGV[8] ~= '' then
  redis.call('HSET', job_key, 'rate_key', ARGV[8])
end
redis.call('ZADD', target_key, ARGV[4], job_id)
return 1
