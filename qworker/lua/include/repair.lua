--[[ repair (included by dependencies.lua): a requeued job in a flow. One with dependencies
waits again for those not done; one with dependents brings back, level after level in the same
step, every dependent its failure dead-lettered, so requeuing the cause resumes the flow.
]]

-- Dependencies of a job still to be waited for, and the first one that failed for good (dead,
-- canceled, or deleted: a record gone while this job still counts among its dependents can
-- only have been deleted). A job that runs anyway ('run') does not wait for failed ones.
local function open_deps(deps_text, on_dep_fail)
  local left, failed, failed_state = 0, nil, nil
  for _, dep in ipairs(split_ids(deps_text)) do
    local state = redis.call('HGET', job_key_of(dep), 'state') or 'deleted'
    local has_failed = state == 'dead' or state == 'canceled' or state == 'deleted'
    if has_failed and not failed then failed, failed_state = dep, state end
    -- A deleted one will never finish: it is not waited for.
    if state ~= 'done' and state ~= 'deleted' then
      if not (has_failed and on_dep_fail == 'run') then left = left + 1 end
    end
  end
  return left, failed, failed_state
end

-- Wait (again) for the dependencies not done, or be queued (scheduled after its delay, unless
-- `at_once`: see make_ready) if there are none.
local function wait_or_ready(job_key, job_id, left, now_ms, at_once)
  redis.call('HSET', job_key, 'deps_left', left)
  if left <= 0 then
    make_ready(job_key, job_id, now_ms, at_once)
    return
  end
  stamp(job_key, 'waiting', now_ms)
  local timeout_ms = tonumber(redis.call('HGET', job_key, 'dep_timeout_ms')) or 0
  redis.call('ZADD', WAITING_KEY, now_ms + timeout_ms, job_id)
end

-- Out of the dead-letter queue, its failure forgotten (requeue_dead does the same).
local function undo_dead(job_key, job_id)
  redis.call('ZREM', NS .. KEY_NAMES.DEAD_LETTER, job_id)
  redis.call('HSET', job_key, 'attempts', 0)
  redis.call('HDEL', job_key, 'error', 'failed_at_ms', 'owner', 'finished_at_ms', 'dep_failed')
end

-- The dependents a dead `job_id` took down with it, back to waiting, and theirs in turn. One
-- with another dependency still failed stays dead, with that dependency as its reason.
local function revive_dependents(job_id, now_ms)
  local work, i = {job_id}, 1
  while i <= #work do
    for _, dependent in ipairs(redis.call('SMEMBERS', NS .. KEY_NAMES.DEPENDENTS .. work[i])) do
      local d_key = job_key_of(dependent)
      local d = redis.call('HMGET', d_key, 'state', 'dep_failed', 'deps', 'on_dep_fail')
      if d[1] == 'dead' and d[2] then
        local left, failed, failed_state = open_deps(d[3], d[4])
        if failed and d[4] ~= 'run' then
          local reason = 'dependency ' .. failed .. ' ' .. failed_state
          local error_json = cjson.encode({type = 'DependencyFailed', message = reason,
            traceback = ''})
          redis.call('HSET', d_key, 'error', error_json, 'dep_failed', failed)
        else
          undo_dead(d_key, dependent)
          wait_or_ready(d_key, dependent, left, now_ms)
          work[#work + 1] = dependent
        end
      end
    end
    i = i + 1
  end
end
