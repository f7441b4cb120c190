-- place: forwards a batch of submitted jobs to their lanes, each atomically with
-- acknowledging its submit entry; drops entries of jobs cancelled (or placed) meanwhile.
-- KEYS[1]  <prefix>:submit   the submit stream
-- ARGV     prefix, now_ms, then per job 11 values: submit_entry, id, env_json, kind,
--          priority, device, max_attempts, created_us, lane, placement_json, est_s
-- Touches  <prefix>:job:<id>, <prefix>:lane:<lane>:<priority>, <prefix>:backlog:<lane>
-- Returns  one value per job: 1 placed, 0 dropped.
local submit, now = KEYS[1], ARGV[2]
local out = {}
local i = 3
while i + 10 <= #ARGV do
  local entry, id, lane = ARGV[i], ARGV[i + 1], ARGV[i + 8]
  local rec = rec_key(id)
  local st = redis.call('HGET', rec, 'state')
  if st and st ~= 'queued' then
    table.insert(out, 0)
  else
    if not st then
      redis.call('HSET', rec, 'env', ARGV[i + 2], 'kind', ARGV[i + 3], 'priority', ARGV[i + 4], 'device', ARGV[i + 5],
        'attempts', 0, 'max_attempts', ARGV[i + 6], 'created_us', ARGV[i + 7], 'completions', 0, 'cancel', 0)
    end
    local prio = redis.call('HGET', rec, 'priority')
    local e = redis.call('XADD', ns .. ':lane:' .. lane .. ':' .. prio, '*', 'id', id)
    redis.call('HSET', rec, 'state', 'placed', 'lane', lane, 'placement', ARGV[i + 9], 'est', ARGV[i + 10], 'entry', e,
      'updated_ms', now)
    backlog_add(lane, ARGV[i + 10], '')
    table.insert(out, 1)
  end
  redis.call('XACK', submit, 'schedulers', entry)
  redis.call('XDEL', submit, entry)
  i = i + 11
end
return out
