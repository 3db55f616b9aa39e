--[[ claim: take up to max_jobs ready jobs, highest priority first and oldest first within a
list, and record each as in flight under this worker's lease, in one atomic step.

A worker reads the shared priority lists and the lanes (lanes.lua, routing.py) of the types it
serves. One serving every type ('all') reads the lane of every laned type it knows. One serving
only some types ('only') reads their lanes, and moves a job of any other type it meets in the
shared lists to the back of that type's lane, opening the lane (enqueue routes the type there
from then on): such a job costs one move, once, and never blocks the lists. Within a priority
the lists are read from a start that rotates with id_base, so that no lane starves another.

Paused priorities are not looked at, nor the lanes of paused types. A job of a paused type that
reaches the front of a shared list is moved aside (to its type's held set, state 'paused')
instead of being claimed: each costs one move, once, and the claim goes on behind it.

Everything is read before the first write, so an error (a key another cluster node holds, a
wrong type) can only stop the script before it has moved anything.

KEYS[1..4]  shared priority lists 1 (urgent) .. 4 (low)
KEYS[5]     in-flight sorted set (score: lease deadline, ms)
KEYS[6]     shared wakeup list
KEYS[7]     pauses hash ('priority:N' or 'type:T' -> end ms, -1 until resumed, 0 ended)
KEYS[8]     migration fence (never exists; see keys.py)
ARGV[1]     job key prefix
ARGV[2]     worker_id
ARGV[3]     now_ms ('' for Redis's own clock, TIME)
ARGV[4]     lease_ms: the lease runs until now + lease_ms
ARGV[5]     max_jobs
ARGV[6]     id_base: a unique string; a hand-pushed payload gets the id id_base .. '-' .. n
ARGV[7]     'all' (the worker serves every type it knows) or 'only' (just those listed)
ARGV[8..]   the types the worker knows ('all') or serves ('only')
Returns     flat array: the number of entries in the pauses hash (the worker lifts ended
            pauses while there are any), the array of laned types whose lanes this worker
            reads (it blocks on their wakeup lists), then two entries per job: id, then the
            job hash as it was read, as a field/value array, ending with 'claims' and the new
            claim count (the owner token of a claim is worker_id .. ':' .. claims).
]]
--#include lanes
local job_prefix = ARGV[1]
local worker_id = ARGV[2]
local now_ms = now_or_redis(ARGV[3])
local lease_deadline_ms = now_ms + tonumber(ARGV[4])
local max_jobs = tonumber(ARGV[5])
local id_base = ARGV[6]
local serves_all = ARGV[7] == 'all'
local inflight_key = KEYS[5]
local wakeup_key = KEYS[6]
local listed = {}
for i = 8, #ARGV do listed[ARGV[i]] = true end

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

-- Reads: the lanes this worker reads. Each source has its four lists and its wakeup list.
local lanes_read = {}
if serves_all then
  for _, job_type in ipairs(redis.call('HKEYS', LANES_KEY)) do
    if listed[job_type] then lanes_read[#lanes_read + 1] = job_type end
  end
else
  for i = 8, #ARGV do lanes_read[#lanes_read + 1] = ARGV[i] end
end
local sources = {{lists = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, wakeup = wakeup_key,
  shared = true}}
for _, job_type in ipairs(lanes_read) do
  if not paused_types[job_type] then
    sources[#sources + 1] = {wakeup = lane_wakeup(job_type), lists = {lane_list(job_type, 1),
      lane_list(job_type, 2), lane_list(job_type, 3), lane_list(job_type, 4)}}
  end
end

-- The type a hand-pushed payload (or a record without one) names, if any.
local function type_in(payload)
  local ok, data = pcall(cjson.decode, payload or '')
  if ok and type(data) == 'table' and type(data.job_type) == 'string' then
    return data.job_type
  end
  return nil
end

-- Reads: the oldest entries of each list (at its right end), and what each is. Entries moved
-- aside (held, or moved to a lane) do not count towards max_jobs: the claim reads on behind
-- them, up to MAX_ASIDE.
local MAX_ASIDE = 1000
-- The fields of a record the claim decides by (the worker is sent them all).
local WANTED = {enqueued_at_ms = true, job_type = true, unique_key = true, unique_until = true,
  seq = true, claims = true}
-- plan: {priority, entry, job_id, fields (nil: adopt it)}; held: {id, type, seq};
-- moved: {priority, entry, job_id, fields (nil: adopt it), type}
local plan, held, moved = {}, {}, {}
local taken = {}  -- {list key, entries taken from its front}
local cut = false  -- stopped with more perhaps ready
local start = tonumber(string.sub(id_base, 1, 6), 16) or 0
for priority = 1, 4 do
  for s = 0, #sources - 1 do
    if cut or paused_priorities[priority] then break end
    local source = sources[(start + s) % #sources + 1]
    -- With lanes, one EXISTS skips an empty source (most are, most of the time) instead of
    -- four LRANGEs; a worker with no lane to read pays nothing for it.
    if #sources > 1 and source.empty == nil then
      source.empty = redis.call('EXISTS', unpack(source.lists)) == 0
    end
    local key = source.lists[priority]
    local count, entries = 0, {}
    repeat
      if source.empty then break end
      local wanted = max_jobs - #plan
      if wanted <= 0 or #held + #moved >= MAX_ASIDE then
        cut = true
        break
      end
      entries = redis.call('LRANGE', key, -(count + wanted), -(count + 1))
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
          job_id = id_base .. '-' .. (#plan + #moved + 1)
          redis.call('EXISTS', job_prefix .. job_id)  -- a read first, like every key written
        end
        local job_type = fields and fields.job_type
        if fields and job_type and paused_types[job_type] then
          held[#held + 1] = {job_id, job_type, tonumber(fields.seq) or 0}
        else
          if source.shared and not serves_all and not job_type then
            job_type = type_in(fields and redis.call('HGET', job_prefix .. entry, 'payload')
              or entry)
          end
          if source.shared and not serves_all and job_type and not listed[job_type] then
            moved[#moved + 1] = {priority, entry, job_id, fields, job_type}
          else
            plan[#plan + 1] = {priority, entry, job_id, fields}
          end
        end
        count = count + 1
      end
    until #entries == 0
    if count > 0 then
      source.found = true
      taken[#taken + 1] = {key, count}
    end
  end
end

-- Writes.
for _, pair in ipairs(taken) do
  redis.call('RPOP', pair[1], pair[2])
end
for _, job in ipairs(held) do
  redis.call('ZADD', NS .. KEY_NAMES.HELD .. job[2], job[3], job[1])
  stamp(job_prefix .. job[1], 'paused', now_ms)
end
for _, job in ipairs(moved) do
  local priority, entry, job_id, fields, job_type = job[1], job[2], job[3], job[4], job[5]
  if not fields then
    redis.call('HSET', job_prefix .. job_id, 'payload', entry, 'priority', priority,
      'attempts', 0, 'enqueued_at_ms', now_ms, 'job_type', job_type, 'state', 'queued',
      'state_at_ms', now_ms)
  end
  redis.call('HSETNX', LANES_KEY, job_type, now_ms)
  redis.call('LPUSH', lane_list(job_type, priority), job_id)
  lanes_ready[lane_wakeup(job_type)] = true
end
local claimed = {#pauses / 2, lanes_read}
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

-- Tokens: a source found empty keeps none (an idle worker must block, not spin); when the
-- claim stopped with more perhaps ready, every source gets one to pass the word on.
for _, source in ipairs(sources) do
  if cut then
    lanes_ready[source.wakeup] = true
  elseif not source.found then
    redis.call('DEL', source.wakeup)
  end
end
wake_ready(wakeup_key)
return claimed
