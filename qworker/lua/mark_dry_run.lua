--[[ mark_dry_run: record on a job that a dry-run worker ran it without doing its work (a tweet
logged, not posted), and count it apart in the statistics hash, once per job; only while the
caller owns the job. A dry run never passes silently for real work.

KEYS[1]     the job hash
KEYS[2]     statistics hash
KEYS[3]     fence: a key that never exists (see keys.py)
ARGV[1]     owner token
ARGV[2]     now_ms: recorded as the job's dry_run_at_ms
ARGV[3]     the statistics field that counts dry runs
Returns     1 recorded, 0 when the job is no longer owned or was recorded already
]]
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner ~= ARGV[1] then
  return 0
end
if redis.call('HSETNX', KEYS[1], 'dry_run_at_ms', ARGV[2]) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
return 1
