--[[ unknown_type: mark a claimed job whose type the worker does not know (recording when a worker
first saw it so), or clear that mark once a worker that knows the type has it; the statistics
hash counts the jobs marked, i.e. waiting for a worker that knows their type. Only while the
job is still owned by the caller.

KEYS[1]     the job hash
KEYS[2]     statistics hash
KEYS[3]     fence: a key that never exists (see keys.py)
ARGV[1]     owner token
ARGV[2]     'mark' or 'clear'
ARGV[3]     now_ms: the time recorded by a first mark
Returns     mark: when the job was first seen unknown (ms); clear: 1 if a mark was cleared;
            0 when the job is no longer owned (or, for clear, was not marked)
]]
local job_key = KEYS[1]
local stats_key = KEYS[2]
local since_field = 'unknown_type_since_ms'
local waiting_stat = 'unknown_type_waiting'

local owner, since = unpack(redis.call('HMGET', job_key, 'owner', since_field))
if owner ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'mark' then
  if since then
    return tonumber(since)
  end
  redis.call('HSET', job_key, since_field, ARGV[3])
  redis.call('HINCRBY', stats_key, waiting_stat, 1)
  return tonumber(ARGV[3])
end
if not since then
  return 0
end
redis.call('HDEL', job_key, since_field)
redis.call('HINCRBY', stats_key, waiting_stat, -1)
return 1
