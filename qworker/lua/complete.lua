--[[ complete: acknowledge finished jobs: each leaves in-flight and becomes 'done' (its record,
with its result, kept for keep_ms, or deleted at once when keep_ms is 0), if still ours.

KEYS[1]     in-flight sorted set
KEYS[2]     statistics hash
KEYS[3]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     now_ms ('' for Redis's own clock, TIME): finished_at_ms
ARGV[3]     keep_ms: how long the record of a done job stays readable
ARGV[4]     n: how many of the jobs have a result (they come first)
ARGV[5..]   n triples: job id, owner token, result as JSON; then pairs: job id, owner token
            (jobs without a result: most jobs, so most send two values, not three)
Returns     array of the ids that were NOT acknowledged because this worker no longer owns them
]]
--#include lanes
local job_prefix = ARGV[1]
local now_ms = now_or_redis(ARGV[2])
local keep_ms = tonumber(ARGV[3])
local inflight_key = KEYS[1]
local stats_key = KEYS[2]

-- Reads first: which of these jobs are still ours, and what their ending must also do.
local ours, lost = {}, {}
local with_results_end = 4 + 3 * tonumber(ARGV[4])
local i = 5
while i <= #ARGV do
  local job_id = ARGV[i]
  local result, step = '', 2
  if i < with_results_end then
    result, step = ARGV[i + 2], 3
  end
  local fields = redis.call('HMGET', job_prefix .. job_id, 'owner', 'attempts', unpack(END_FIELDS))
  if fields[1] == ARGV[i + 1] then
    ours[#ours + 1] = {job_id, result, end_fields_at(fields, 3), fields[2]}
  else
    lost[#lost + 1] = job_id
  end
  i = i + step
end
local done_ids = {}
for _, job in ipairs(ours) do
  local job_id, result = job[1], job[2]
  local job_key = job_prefix .. job_id
  -- attempts counted the failed ones: the record shows this one too
  local extra = {'attempts', (tonumber(job[4]) or 0) + 1}
  if result ~= '' then
    extra[3], extra[4] = 'result', result
  end
  end_job(job_key, job_id, 'done', now_ms, keep_ms, job[3], extra)
  done_ids[#done_ids + 1] = job_id
end
if #ours > 0 then
  call_in_chunks('ZREM', inflight_key, done_ids, 1)
  redis.call('HINCRBY', stats_key, 'processed', #ours)
  record_recent('done', done_ids, keep_ms)
end
return lost
