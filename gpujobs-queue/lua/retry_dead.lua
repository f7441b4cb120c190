-- retry_dead: re-submits a dead or failed job with fresh attempts. The jobs of its
-- graph that failed only because it did (`failed_by`, directly or through others) wait
-- for it again, unless another of their parents has ended without a result.
-- KEYS[1]  <prefix>:submit
-- ARGV     prefix, id, now_ms
-- Touches  <prefix>:job:<id>, <prefix>:dead, <prefix>:events, <prefix>:children:<id> and
--          the records of its dependants, <prefix>:counts
-- Returns  1 re-submitted, 0 not dead (or its envelope is gone), or
--          'unmet:<ids>' for a graph job whose parents have not all succeeded.
local id, now = ARGV[2], ARGV[3]
local rec = rec_key(id)
local f = redis.call('HMGET', rec, 'state', 'dead_entry', 'env', 'parents')
if (f[1] ~= 'dead' and f[1] ~= 'failed') or not f[3] then return 0 end
if f[4] and f[4] ~= '' then
  local unmet = {}
  for parent in string.gmatch(f[4], '%S+') do
    if redis.call('HGET', rec_key(parent), 'state') ~= 'succeeded' then table.insert(unmet, parent) end
  end
  if #unmet > 0 then return 'unmet:' .. table.concat(unmet, ', ') end
end
if f[2] then redis.call('XDEL', ns .. ':dead', f[2]) end
redis.call('HSET', rec, 'state', 'queued', 'attempts', 0, 'cancel', 0, 'updated_ms', now, 'completions', 0)
redis.call('HDEL', rec, 'error', 'finished_ms', 'dead_entry', 'entry', 'worker', 'result', 'lane', 'placement', 'est', 'near')
redis.call('PERSIST', rec)
redis.call('XADD', KEYS[1], '*', 'job', f[3])
event(id, 'queued')
local stack = redis.call('SMEMBERS', ns .. ':children:' .. id)
while #stack > 0 do
  local child = table.remove(stack)
  local crec = rec_key(child)
  local c = redis.call('HMGET', crec, 'state', 'failed_by', 'dead_entry', 'parents')
  if c[1] == 'failed' and c[2] and c[2] ~= '' then
    local waiting, broken = 0, false
    for parent in string.gmatch(c[4] or '', '%S+') do
      local ps = redis.call('HGET', rec_key(parent), 'state')
      if ps == 'failed' or ps == 'dead' or ps == 'cancelled' or not ps then broken = true end
      if ps ~= 'succeeded' then waiting = waiting + 1 end
    end
    if not broken then
      if c[3] then redis.call('XDEL', ns .. ':dead', c[3]) end
      redis.call('HSET', crec, 'state', 'waiting', 'waiting_on', waiting, 'updated_ms', now)
      redis.call('HDEL', crec, 'error', 'finished_ms', 'dead_entry', 'failed_by')
      redis.call('HINCRBY', ns .. ':counts', 'waiting', 1)
      event(child, 'waiting')
      for _, g in ipairs(redis.call('SMEMBERS', ns .. ':children:' .. child)) do table.insert(stack, g) end
    end
  end
end
return 1
