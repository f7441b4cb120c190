-- retry_dead: re-submits a dead or failed job with fresh attempts.
-- KEYS[1]  <prefix>:submit
-- ARGV     prefix, id, now_ms
-- Touches  <prefix>:job:<id>, <prefix>:dead, <prefix>:events
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
return 1
