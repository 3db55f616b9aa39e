--[[ claim: take up to max_jobs ready jobs, highest priority first and oldest first within a
priority, and record each as in flight under this worker's lease, in one atomic step.

Paused priorities are not looked at. A job of a paused type that reaches the front of its list
is moved aside (to its type's held set, state 'paused') instead of being claimed: each costs
one move, once, and the claim goes on with the jobs behind it.

Everything is read before the first write, so an error (a key another cluster node holds, a
wrong type) can only stop the script before it has moved anything.

KEYS[1..4]  priority lists 1 (urgent) .. 4 (low)
KEYS[5]     in-flight sorted set (score: lease deadline, ms)
KEYS[6]     wakeup list
KEYS[7]     pauses hash ('priority:N' or 'type:T' -> end ms, -1 until resumed, 0 ended)
KEYS[8]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     worker_id
ARGV[3]     now_ms ('' for Redis's own clock, TIME)
ARGV[4]     lease_ms: the lease runs until now + lease_ms
ARGV[5]     max_jobs
ARGV[6]     id_base: a unique string; a hand-pushed payload gets the id id_base .. '-' .. n
Returns     flat array: the number of entries in the pauses hash (the worker lifts ended
            pauses while there are any), then two entries per job: id, then the job hash as it
            was read, as a field/value array, ending with 'claims' and the new claim count (the
            owner token of a claim is worker_id .. ':' .. claims).
]]
--#include job_end
local job_prefix = ARGV[1]
local worker_id = ARGV[2]
local now_ms = now_or_redis(ARGV[3])
local lease_deadline_ms = now_ms + tonumber(ARGV[4])
local max_jobs = tonumber(ARGV[5])
local id_base = ARGV[6]
local inflight_key = KEYS[5]
local wakeup_key = KEYS[6]

-- Reads: what is paused now.
local pauses = redis.call('HGETALL', KEYS[7])
local paused_priorities, paused_types = {}, {}
for i = 1, #pauses, 2 do
  local ends = tonumber(pauses[i + 1]) or 0
  if ends == -1 or ends > now_ms then
    local kind, name = string.match(pauses[i], '^(%a+):(.*)$')
    if kind == 'priority' then paused_priorities[tonumber(name)] = true end
    if kind == 'type' then paused_types[name] = true end
  end
end

-- Reads: the oldest entries of each list (at its right end), and what each is. Entries of a
-- paused type do not count towards max_jobs: the claim reads on behind them, up to MAX_HELD.
local MAX_HELD = 1000
-- The fields of a record the claim decides by (the worker is sent them all).
local WANTED = {enqueued_at_ms = true, job_type = true, unique_key = true, unique_until = true,
  seq = true, claims = true}
-- plan: {priority, entry, job_id, fields (nil: adopt it)}; held: {id, type, seq}
local plan, held = {}, {}
local taken_per_list = {0, 0, 0, 0}
for priority = 1, 4 do
  local entries = {}
  repeat
    local wanted = max_jobs - #plan
    if wanted <= 0 or paused_priorities[priority] or #held >= MAX_HELD then break end
    local taken = taken_per_list[priority]
    entries = redis.call('LRANGE', KEYS[priority], -(taken + wanted), -(taken + 1))
    for i = #entries, 1, -1 do
      local entry = entries[i]
      local job_id = entry
      -- The whole record is read once: what decides the claim, and what the worker is sent.
      local fields = nil
      if string.len(entry) <= 64 then
        local flat = redis.call('HGETALL', job_prefix .. entry)
        local wanted_fields = {}
        for f = 1, #flat, 2 do
          if WANTED[flat[f]] then wanted_fields[flat[f]] = flat[f + 1] end
        end
        if wanted_fields.enqueued_at_ms then
          fields = wanted_fields
          fields.flat = flat
        end
      end
      -- Anything that is not the id of a stored job was pushed by another program: adopt it.
      if not fields then
        job_id = id_base .. '-' .. (#plan + 1)
        redis.call('EXISTS', job_prefix .. job_id)  -- a read first, like every key written below
      end
      if fields and fields.job_type and paused_types[fields.job_type] then
        held[#held + 1] = {job_id, fields.job_type, tonumber(fields.seq) or 0}
      else
        plan[#plan + 1] = {priority, entry, job_id, fields}
      end
      taken_per_list[priority] = taken_per_list[priority] + 1
    end
  until #entries == 0
end

-- Writes.
for priority = 1, 4 do
  if taken_per_list[priority] > 0 then
    redis.call('RPOP', KEYS[priority], taken_per_list[priority])
  end
end
for _, job in ipairs(held) do
  redis.call('ZADD', NS .. KEY_NAMES.HELD .. job[2], job[3], job[1])
  stamp(job_prefix .. job[1], 'paused', now_ms)
end
local claimed = {#pauses / 2}
local leases = {}  -- score, member pairs for one ZADD
for _, step in ipairs(plan) do
  local priority, entry, job_id, fields = step[1], step[2], step[3], step[4]
  local job_key = job_prefix .. job_id
  if not fields then
    fields = {flat = {'payload', entry, 'priority', tostring(priority), 'attempts', '0',
      'enqueued_at_ms', tostring(now_ms)}}
    redis.call('HSET', job_key, 'payload', entry, 'priority', priority,
      'attempts', 0, 'enqueued_at_ms', now_ms)
  end
  local claims = (tonumber(fields.claims) or 0) + 1
  local owner = worker_id .. ':' .. claims
  redis.call('HSET', job_key, 'claims', claims, 'owner', owner, 'started_at_ms', now_ms,
    'state', 'running', 'state_at_ms', now_ms)
  if fields.unique_until == 'started' then
    release_unique(job_id, fields.unique_key)
  end
  leases[#leases + 1] = lease_deadline_ms
  leases[#leases + 1] = job_id
  -- The record as read (no second read), with the claim count that names this claim (a later
  -- pair wins in the worker's dict); the worker needs nothing else this claim changed.
  local flat = fields.flat
  flat[#flat + 1] = 'claims'
  flat[#flat + 1] = tostring(claims)
  claimed[#claimed + 1] = job_id
  claimed[#claimed + 1] = flat
end

if #leases > 0 then
  call_in_chunks('ZADD', inflight_key, leases, 2)
end

if #plan == 0 and #held == 0 then
  -- Nothing is ready, so any token left is stale: an idle worker must block, not spin.
  redis.call('DEL', wakeup_key)
elseif (#plan == max_jobs or #held >= MAX_HELD) and redis.call('LLEN', wakeup_key) == 0 then
  -- More may be ready: pass the word on to the next idle worker.
  redis.call('LPUSH', wakeup_key, '1')
end
return claimed
