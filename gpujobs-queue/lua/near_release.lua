-- near_release: hands jobs placed on a worker by locality to their lane. With a worker
-- (it is leaving: deregistering), every job on its near stream that it has not read,
-- at once; the stream is deleted when that empties it. Without one (the scheduler's
-- sweep, so that recovery and autoscalers watching the lanes do not wait for a
-- worker's reclaim), every unread job past its `until` on any near stream of the lane.
-- Entries already read stay pending, for reclaim.
-- KEYS[1]  <prefix>:near:<lane>:<worker>, or <prefix>:near:<lane> without a worker
-- ARGV     prefix, lane, worker ('' for the sweep), now_ms
-- Touches  <prefix>:job:<id>, <prefix>:lane:<lane>:<priority>, <prefix>:near:<lane> and
--          the near streams it lists
-- Returns  1.
local lane, w, now = ARGV[2], ARGV[3], ARGV[4]
if w == '' then
  near_sweep(lane, now, pending_set)
  return 1
end
local near = KEYS[1]
if redis.call('EXISTS', near) == 0 then return 1 end
near_move(lane, w, pending_set(near), true, now)
if redis.call('XLEN', near) == 0 then
  redis.call('DEL', near)
  redis.call('ZREM', ns .. ':near:' .. lane, w)
end
return 1
