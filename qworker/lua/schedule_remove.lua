--[[ schedule_remove: delete one schedule in one step. Jobs it already enqueued stay.

KEYS[1]  the schedule's hash
KEYS[2]  schedules sorted set
KEYS[3]  migration fence (never exists; see keys.py)
ARGV[1]  schedule name
ARGV[2]  channel announcing schedule changes
Returns  1 removed, 0 no such schedule
]]
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
-- pcall: an ACL user without channel rights still removes schedules (workers then poll)
if removed == 1 then redis.pcall('PUBLISH', ARGV[2], ARGV[1]) end
return removed
