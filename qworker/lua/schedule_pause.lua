--[[ schedule_pause: pause or resume one schedule in one step. A paused schedule fires nothing;
resuming starts from the next due time after now (the ones passed while paused are not missed
fires: nobody wanted them).

KEYS[1]  the schedule's hash
KEYS[2]  schedules sorted set (score: next due time in ms; +inf while paused or ended)
KEYS[3]  migration fence (never exists; see keys.py)
ARGV[1]  schedule name
ARGV[2]  '1' to pause, '0' to resume
ARGV[3]  next_due_ms on resume ('' for none: the schedule has ended)
ARGV[4]  now_ms: stamped as updated_ms
ARGV[5]  channel announcing schedule changes
ARGV[6]  on resume: the version next_due_ms was computed from (the calendar it read)
Returns  1 changed, 0 already so, -1 no such schedule, -2 changed since it was read (an upsert
         came between: read it again, so the next due time is the new calendar's)
]]
local schedule_key, due_key = KEYS[1], KEYS[2]
local name, pause, next_due = ARGV[1], ARGV[2], ARGV[3]

local current = redis.call('HMGET', schedule_key, 'paused', 'version')
local paused = current[1]
if not paused then return -1 end
if paused == pause then return 0 end
if pause == '0' and current[2] ~= ARGV[6] then return -2 end

if pause == '1' then
  redis.call('HSET', schedule_key, 'paused', '1', 'updated_ms', ARGV[4])
  redis.call('ZADD', due_key, '+inf', name)
else
  redis.call('HSET', schedule_key, 'paused', '0', 'next_due_ms', next_due, 'updated_ms', ARGV[4])
  redis.call('ZADD', due_key, next_due == '' and '+inf' or next_due, name)
end
redis.call('HINCRBY', schedule_key, 'version', 1)
-- pcall: an ACL user without channel rights still changes schedules (workers then poll)
redis.pcall('PUBLISH', ARGV[5], name)
return 1
