--[[ schedule_upsert: create or replace one recurring schedule in one step.

KEYS[1]  the schedule's hash
KEYS[2]  schedules sorted set (score: next due time in ms; +inf while paused or ended)
KEYS[3]  migration fence (never exists; see keys.py)
ARGV[1]  schedule name
ARGV[2]  now_ms: stamped as created_ms (new) and updated_ms
ARGV[3]  spec key: what decides the due times. An update that keeps it keeps the next due
         time, the grid anchor and the history, so a deploy that syncs unchanged schedules
         neither skips nor repeats a fire.
ARGV[4]  next_due_ms of a new or changed calendar ('' for none: it has ended)
ARGV[5]  anchor_ms of a new or changed interval grid
ARGV[6]  channel announcing schedule changes (not a key: workers sleeping on it wake)
ARGV[7..] field/value pairs: the schedule's configuration (job, priority, policies, calendar)
Returns  {'added' or 'updated', its next due time in ms or ''}
]]
local schedule_key, due_key = KEYS[1], KEYS[2]
local name, now_ms, spec_key = ARGV[1], ARGV[2], ARGV[3]

local current = redis.call('HMGET', schedule_key, 'spec_key', 'next_due_ms', 'paused', 'version')
local outcome = current[4] and 'updated' or 'added'
local fields = {}
for i = 7, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local next_due = ARGV[4]
if outcome == 'added' then
  for _, v in ipairs({'created_ms', now_ms, 'paused', '0', 'fired', '0', 'missed_count', '0',
      'overlapped', '0'}) do
    fields[#fields + 1] = v
  end
end
if outcome == 'updated' and current[1] == spec_key then
  next_due = current[2] or ''
else
  fields[#fields + 1], fields[#fields + 2] = 'anchor_ms', ARGV[5]
end
for _, v in ipairs({'spec_key', spec_key, 'next_due_ms', next_due, 'updated_ms', now_ms}) do
  fields[#fields + 1] = v
end

redis.call('HSET', schedule_key, unpack(fields))
redis.call('HINCRBY', schedule_key, 'version', 1)
local paused = current[3] == '1'
redis.call('ZADD', due_key, (next_due == '' or paused) and '+inf' or next_due, name)
-- pcall: an ACL user without channel rights still changes schedules (workers then poll)
redis.pcall('PUBLISH', ARGV[6], name)
return {outcome, next_due}
