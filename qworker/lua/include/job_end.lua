--[[ job_end (included): what every script that ends a job (done, dead or canceled) does besides
moving it: release its unique key, delete the media it carries, wake the clients waiting for it,
forget a cancel request, keep its record for keep_ms (done, canceled) and list it among the
recently finished. A script including this has the job key prefix as ARGV[1].
]]
--#include namespace
local SIGNAL_TTL_MS = 60000

-- What end_job needs to know of a job, read (HMGET) before the script's first write. The
-- flags (has_media, has_dependents, deps) are absent on most jobs: their ends pay nothing more.
local END_FIELDS = {'waiters', 'unique_key', 'cancel_requested_at_ms', 'has_media',
  'has_dependents', 'deps'}

-- The END_FIELDS values out of an HMGET reply that asked for them from position `first` on.
local function end_fields_at(reply, first)
  local out = {}
  for i = 1, #END_FIELDS do out[i] = reply[first + i - 1] end
  return out
end

-- A job in a flow (with dependents or dependencies) settles them when it ends (dependencies.lua,
-- included by lanes.lua, which every script ending a job includes).
local flow_ended

local function read_end_fields(job_key)
  return redis.call('HMGET', job_key, unpack(END_FIELDS))
end

-- Release the job's unique key if the job still holds it (enqueue --unique-key).
local function release_unique(job_id, unique_key)
  if unique_key then
    local key = NS .. KEY_NAMES.UNIQUE .. unique_key
    if redis.call('GET', key) == job_id then
      redis.call('DEL', key)
    end
  end
end

-- end_fields: what read_end_fields returned. keep_ms: how long a done or canceled record stays
-- (0: deleted now); a dead job stays in the dead-letter queue, so its record stays too.
-- extra: more field/value pairs for a kept record, written in the same HSET (or nil).
local function end_job(job_key, job_id, state, now_ms, keep_ms, end_fields, extra)
  local waiters, unique_key, cancel_requested = end_fields[1], end_fields[2], end_fields[3]
  release_unique(job_id, unique_key)
  -- Files a job carries (a tweet's images) go with its end, whatever the state.
  if end_fields[4] then redis.call('DEL', NS .. KEY_NAMES.MEDIA .. job_id) end
  local in_flow = end_fields[5] or end_fields[6]
  local waiting = tonumber(waiters) or 0
  if waiting > 0 then
    local signal_key = NS .. KEY_NAMES.SIGNAL .. job_id
    for _ = 1, waiting do
      redis.call('RPUSH', signal_key, state)
    end
    redis.call('PEXPIRE', signal_key, SIGNAL_TTL_MS)
  end
  if cancel_requested then
    redis.call('SREM', NS .. KEY_NAMES.CANCEL_REQUESTS, job_id)
  end
  if state ~= 'dead' and keep_ms <= 0 and not in_flow then
    redis.call('DEL', job_key)
    return
  end
  -- The owner token goes: a second settlement of the same claim finds the job no longer owned.
  redis.call('HSET', job_key, 'state', state, 'state_at_ms', now_ms, 'finished_at_ms', now_ms,
    'owner', '', unpack(extra or {}))
  if waiting > 0 then
    redis.call('HDEL', job_key, 'waiters')
  end
  if in_flow then
    flow_ended(job_key, job_id, state, now_ms, keep_ms)
  elseif state ~= 'dead' then
    redis.call('PEXPIRE', job_key, keep_ms)
  end
end

-- One command for many members (ZADD/ZREM/LPUSH ...), in chunks the Lua stack can unpack.
local function call_in_chunks(command, key, items, per_item)
  local chunk = 1000 * per_item
  for first = 1, #items, chunk do
    redis.call(command, key, unpack(items, first, math.min(first + chunk - 1, #items)))
  end
end

-- List finished ids (newest first) for `jobs list --state done|canceled`. Trimmed back to
-- RECENT_MAX once a batch of RECENT_SLACK more has come: one command per call, not two.
local RECENT_SLACK = 1000
local function record_recent(state, job_ids, keep_ms)
  if #job_ids > 0 and keep_ms > 0 then
    local key = NS .. KEY_NAMES.RECENT .. state
    if redis.call('LPUSH', key, unpack(job_ids)) > RECENT_MAX + RECENT_SLACK then
      redis.call('LTRIM', key, 0, RECENT_MAX - 1)
    end
  end
end
