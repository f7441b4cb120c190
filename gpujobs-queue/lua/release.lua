-- release: gives a job back without counting the attempt (a worker draining at
-- shutdown), or ends it cancelled when cancellation was asked for.
-- KEYS[1]  the lane stream the entry is on
-- ARGV     prefix, entry, consumer, attempt, id, lane, now_ms, ttl_ms
-- Touches  <prefix>:job:<id>, <prefix>:lane:<lane>:<priority>, <prefix>:backlog:<lane>,
--          <prefix>:events
-- Returns  1 released, 0 cancelled, -1 lease lost.
local id, lane, now = ARGV[5], ARGV[6], ARGV[7]
local rec = rec_key(id)
if not holds(rec, ARGV[3], ARGV[4], ARGV[2]) then return -1 end
redis.call('XACK', KEYS[1], 'workers', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HINCRBY', rec, 'attempts', -1)
local f = redis.call('HMGET', rec, 'cancel', 'priority', 'est')
if f[1] == '1' then
  redis.call('HSET', rec, 'state', 'cancelled', 'finished_ms', now, 'updated_ms', now)
  redis.call('PEXPIRE', rec, ARGV[8])
  event(id, 'cancelled')
  return 0
end
local e = redis.call('XADD', ns .. ':lane:' .. lane .. ':' .. f[2], '*', 'id', id)
redis.call('HSET', rec, 'state', 'placed', 'entry', e, 'near', '', 'updated_ms', now)
backlog_add(lane, f[3], '')
event(id, 'placed', 'lane', lane)
return 1
