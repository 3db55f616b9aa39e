--[[ checkpoint: record a named value on a running job (e.g. the id of the tweet it posted), so a
later attempt of the same job knows it, if this worker still owns the job.

KEYS[1]     the job hash
KEYS[2]     migration fence (never exists; see keys.py)
ARGV[1]     owner token
ARGV[2]     field name (prefixed 'cp:' by the caller)
ARGV[3]     value
Returns     1 recorded (and the job marked 'has_checkpoints'), 0 not owned
]]
local job_key = KEYS[1]
if redis.call('HGET', job_key, 'owner') ~= ARGV[1] then
  return 0
end
redis.call('HSET', job_key, ARGV[2], ARGV[3], 'has_checkpoints', '1')
return 1
