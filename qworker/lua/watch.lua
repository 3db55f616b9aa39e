--[[ watch: register a client that waits for a job to end: the script that ends it pushes the
final state to the job's signal list once per registered waiter (job_end.lua), so the client
blocks on that list instead of polling.

KEYS[1]     the job hash
KEYS[2]     migration fence (never exists; see keys.py)
ARGV        none
Returns     the job's state ('' when there is no such job). A waiter is registered only when
            the job has not ended (its state is not done, dead or canceled).
]]
local fields = redis.call('HMGET', KEYS[1], 'state', 'enqueued_at_ms')
if not fields[2] then
  return ''
end
local state = fields[1] or 'queued'
if state == 'done' or state == 'dead' or state == 'canceled' then
  return state
end
redis.call('HINCRBY', KEYS[1], 'waiters', 1)
return state
