--[[ ready_lists (included): where a job that becomes ready goes. A job type with a lane of its
own (see routing.py for why) has four lists, one per priority, and a wakeup list; every other job
goes to the shared priority lists. Call is_laned for a job's type while reading, so that
ready_list reads nothing after a script's first write. A script that only makes jobs ready
(enqueue, promote) includes this alone: each include is code every call runs, so the cheapest
scripts include the least.
]]
--#include namespace
local LANES_KEY = NS .. KEY_NAMES.LANES
local laned_cache = {}

-- Whether job_type has a lane (one HEXISTS per type and script call).
local function is_laned(job_type)
  if not job_type or job_type == '' then return false end
  local laned = laned_cache[job_type]
  if laned == nil then
    laned = redis.call('HEXISTS', LANES_KEY, job_type) == 1
    laned_cache[job_type] = laned
  end
  return laned
end

local function lane_list(job_type, priority)
  return NS .. KEY_NAMES.LANE .. job_type .. ':' .. priority
end

local function lane_wakeup(job_type)
  return NS .. KEY_NAMES.LANE_WAKEUP .. job_type
end

-- What this call made ready: jobs in the shared lists, and the lanes that got jobs.
local shared_ready, lanes_ready = 0, {}

-- The list a job becoming ready goes to: its type's lane, or the shared list of its priority,
-- KEYS[first_shared + priority - 1].
local function ready_list(first_shared, job_type, priority)
  if is_laned(job_type) then
    lanes_ready[lane_wakeup(job_type)] = true
    return lane_list(job_type, priority)
  end
  shared_ready = shared_ready + 1
  return KEYS[first_shared + priority - 1]
end

-- A token on the wakeup list of every place jobs were made ready, so that an idle worker
-- serving them stops blocking (at most one token waits on a list).
local function wake_ready(shared_wakeup)
  if shared_ready > 0 and redis.call('LLEN', shared_wakeup) == 0 then
    redis.call('LPUSH', shared_wakeup, '1')
  end
  for wakeup in pairs(lanes_ready) do
    if redis.call('LLEN', wakeup) == 0 then redis.call('LPUSH', wakeup, '1') end
  end
end
