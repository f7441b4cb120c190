-- cancel: a waiting, queued or placed job never runs (and the jobs of its graph that
-- read its outputs fail); a running one is asked to stop.
-- KEYS[1]  <prefix>:job:<id>
-- ARGV     prefix, id, now_ms, ttl_ms
-- Touches  its lane (or near) stream entry, <prefix>:delayed:<lane>, <prefix>:backlog:<lane>,
--          <prefix>:events, the job's input blobs, its dependants in a graph
-- Returns  notfound, requested, cancelled or finished:<state>.
local id, now = ARGV[2], ARGV[3]
local rec = KEYS[1]
local f = redis.call('HMGET', rec, 'state', 'lane', 'entry', 'priority', 'est', 'near')
local st = f[1]
if not st then return 'notfound' end
if st == 'succeeded' or st == 'failed' or st == 'dead' or st == 'cancelled' then return 'finished:' .. st end
if st == 'running' then
  redis.call('HSET', rec, 'cancel', 1)
  return 'requested'
end
if st == 'waiting' then redis.call('HINCRBY', ns .. ':counts', 'waiting', -1) end
if st == 'placed' then
  if f[3] and f[3] ~= '' then redis.call('XDEL', entry_stream(f[2], f[4], f[6]), f[3]) end
  redis.call('ZREM', ns .. ':delayed:' .. f[2], id)
  backlog_add(f[2], f[5], '-')
end
redis.call('HSET', rec, 'state', 'cancelled', 'finished_ms', now, 'updated_ms', now)
redis.call('PEXPIRE', rec, ARGV[4])
drop_inputs(id)
event(id, 'cancelled')
fail_dependants(id, 'cancelled', now)
return 'cancelled'
