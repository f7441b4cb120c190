-- renew: resets a lease's idle time and records its length.
-- KEYS[1]  the lane stream the entry is on
-- ARGV     prefix, entry, consumer, attempt, id, lease_ms
-- Touches  <prefix>:job:<id>
-- Returns  1 if cancellation was asked for, 0 if not, -1 if the lease is lost.
local rec = rec_key(ARGV[5])
if not holds(rec, ARGV[3], ARGV[4], ARGV[2]) then return -1 end
redis.call('XCLAIM', KEYS[1], 'workers', ARGV[3], 0, ARGV[2], 'JUSTID')
redis.call('HSET', rec, 'lease_ms', ARGV[6])
if redis.call('HGET', rec, 'cancel') == '1' then return 1 end
return 0
