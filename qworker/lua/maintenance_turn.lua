--[[ maintenance_turn: take, keep or give up the fleet's maintenance turn, so that one worker at a
time promotes due jobs and recovers expired leases, instead of every worker every second. The
turn expires unless its holder renews it: a holder that dies passes it on within ttl_ms.

KEYS[1]     turn key (string: the holder's worker id, with a time to live)
KEYS[2]     fence (keys.fence: it never exists, and a script that declares it does not run
            while the namespace's slot migrates)
ARGV[1]     worker id
ARGV[2]     ttl_ms: how long the turn stays this worker's without a renewal; 0 gives it up
Returns     1 when this worker holds the turn now (taken or renewed), 0 otherwise
]]
local turn_key = KEYS[1]
local worker_id = ARGV[1]
local ttl_ms = tonumber(ARGV[2])

local holder = redis.call('GET', turn_key)
if holder and holder ~= worker_id then
  return 0
end
if ttl_ms == 0 then
  if holder then redis.call('DEL', turn_key) end
  return 0
end
redis.call('SET', turn_key, worker_id, 'PX', ttl_ms)
return 1
