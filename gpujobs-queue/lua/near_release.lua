-- near_release: a worker leaving (deregistering) hands back the jobs placed on it by
-- locality that it has not read: they move to their lane at once instead of waiting
-- out their `until`. Entries it read stay pending, for reclaim. An emptied near stream
-- is deleted.
-- KEYS[1]  <prefix>:near:<lane>:<worker>
-- ARGV     prefix, lane, worker, now_ms
-- Touches  <prefix>:job:<id>, <prefix>:lane:<lane>:<priority>, <prefix>:near:<lane>
-- Returns  1 (or 0 when the worker had no near stream).
local lane, w, now = ARGV[2], ARGV[3], ARGV[4]
local near = KEYS[1]
if redis.call('EXISTS', near) == 0 then return 0 end
local delivered = {}
for _, pe in ipairs(redis.call('XPENDING', near, 'workers', '-', '+', 1000)) do delivered[pe[1]] = true end
near_move(lane, w, delivered, true, now)
if redis.call('XLEN', near) == 0 then
  redis.call('DEL', near)
  redis.call('ZREM', ns .. ':near:' .. lane, w)
end
return 1
