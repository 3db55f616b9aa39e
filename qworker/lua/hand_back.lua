--[[ hand_back: return unfinished in-flight jobs to the front of their priority list (at a
shutdown, or when qworker itself failed around a job), without counting an attempt, so they need
not wait for their lease to expire. A job handed back after it started running counts one
hand-back; at max_handbacks it goes to the dead-letter queue instead, so a job that can never
finish (or that trips qworker every time) cannot loop for ever. A job an operator asked to
cancel ends 'canceled' instead of going back.

KEYS[1]     in-flight sorted set
KEYS[2..5]  shared priority lists 1 .. 4 (a laned type goes to its lane: lanes.lua)
KEYS[6]     wakeup list
KEYS[7]     dead-letter sorted set (score: failed_at_ms)
KEYS[8]     statistics hash
KEYS[9]     fence: a key that never exists (see keys.py)
ARGV[1]     job key prefix
ARGV[2]     max_handbacks: the counted hand-back that sends a job to the dead-letter queue
ARGV[3]     error JSON recorded on a job sent to the dead-letter queue
ARGV[4]     now_ms
ARGV[5]     keep_ms: how long the record of a canceled job stays readable
ARGV[6..]   triples: job id, owner token, 1 if the job had started (counts) else 0
Returns     {handed back, sent to the dead-letter queue} (jobs no longer owned are left alone)
]]
--#include lanes
local job_prefix = ARGV[1]
local max_handbacks = tonumber(ARGV[2])
local error_json = ARGV[3]
local now_ms = tonumber(ARGV[4])
local keep_ms = tonumber(ARGV[5])
local inflight_key = KEYS[1]
local wakeup_key = KEYS[6]
local dead_key = KEYS[7]
local stats_key = KEYS[8]

-- Read every job first: nothing is written until all reads have succeeded.
local jobs = {}
for i = 6, #ARGV, 3 do
  local job_key = job_prefix .. ARGV[i]
  local fields = redis.call('HMGET', job_key, 'owner', 'priority', 'handbacks', 'job_type',
    unpack(END_FIELDS))
  if fields[1] == ARGV[i + 1] then
    is_laned(fields[4])
    local handbacks = tonumber(fields[3]) or 0
    if ARGV[i + 2] == '1' then
      handbacks = handbacks + 1
    end
    local priority = tonumber(fields[2]) or 4
    if priority < 1 or priority > 4 then
      priority = 4
    end
    jobs[#jobs + 1] = {ARGV[i], job_key, priority, handbacks, ARGV[i + 2] == '1',
      end_fields_at(fields, 5), fields[4]}
  end
end

local handed_back, buried, canceled = 0, 0, {}
for _, job in ipairs(jobs) do
  local job_id, job_key, priority, handbacks, counted = job[1], job[2], job[3], job[4], job[5]
  local end_fields = job[6]
  redis.call('ZREM', inflight_key, job_id)
  redis.call('HDEL', job_key, 'owner')
  if counted then
    redis.call('HSET', job_key, 'handbacks', handbacks)
  end
  if end_fields[3] then
    redis.call('HINCRBY', stats_key, 'canceled', 1)
    end_job(job_key, job_id, 'canceled', now_ms, keep_ms, end_fields)
    canceled[#canceled + 1] = job_id
  elseif counted and handbacks >= max_handbacks then
    redis.call('HSET', job_key, 'error', error_json, 'failed_at_ms', now_ms)
    redis.call('ZADD', dead_key, now_ms, job_id)
    redis.call('HINCRBY', stats_key, 'dead', 1)
    end_job(job_key, job_id, 'dead', now_ms, 0, end_fields)
    buried = buried + 1
  else
    redis.call('RPUSH', ready_list(2, job[7], priority), job_id)
    stamp(job_key, 'queued', now_ms)
    handed_back = handed_back + 1
  end
end
record_recent('canceled', canceled, keep_ms)
wake_ready(wakeup_key)
return {handed_back, buried}
