--[[ delete_dead: delete jobs from the dead-letter queue, with their records, for good (the web
UI's "delete"). Only dead jobs: an id in any other state is left alone.

KEYS[1]     dead-letter sorted set
KEYS[2]     fence (keys.fence: it never exists, and a script that declares it does not run
            while the namespace's slot migrates)
ARGV[1]     job key prefix
ARGV[2]     keep_ms: how long a done dependency's record stays once no dependent needs it
ARGV[3..]   job ids
Returns     array of the ids deleted (an id not in the dead-letter queue is left out)
]]
--#include lanes
local dead_key = KEYS[1]
local job_prefix = ARGV[1]
local keep_ms = tonumber(ARGV[2])

local deleted, seen = {}, {}
for i = 3, #ARGV do
  local job_id = ARGV[i]
  if not seen[job_id] and redis.call('ZREM', dead_key, job_id) == 1 then
    seen[job_id] = true
    delete_record(job_prefix .. job_id, job_id, keep_ms)
    deleted[#deleted + 1] = job_id
  end
end
return deleted
