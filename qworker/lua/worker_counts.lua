--[[ worker_counts: write a live worker's running/prefetched counts into its record, if the
record is there. A record that expired (the worker stalled past its lease) is left for the
heartbeat to write whole again: a bare count would make a record without the worker's host,
pid and start, which every reader of the registry would have to guess around.

KEYS[1]     the worker's record (hash)
KEYS[2]     migration fence (never exists; see keys.py)
ARGV[1]     running: jobs executing now
ARGV[2]     prefetched: jobs claimed ahead, waiting for a slot
ARGV[3]     lease_ms: the record's time to live, as the heartbeat sets it
Returns     1 written, 0 no record (nothing written)
]]
local worker_key = KEYS[1]
if redis.call('EXISTS', worker_key) == 0 then
  return 0
end
redis.call('HSET', worker_key, 'running', ARGV[1], 'prefetched', ARGV[2])
redis.call('PEXPIRE', worker_key, ARGV[3])
return 1
