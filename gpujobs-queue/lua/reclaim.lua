-- reclaim: claims entries whose worker stopped renewing them for longer than their own
-- lease (each delivery records its lease; lease_ms is the default for records without
-- one), high priority first, and begins them for `consumer` with lease_ms. Entries
-- deleted from the stream meanwhile are acknowledged. Scans the pending entries (jobs in
-- flight, not the backlog), at most 1000 per priority per call.
-- Then the lane's near streams (jobs placed by locality on one worker, `place.lua`): an
-- entry its worker has not read by its `until` moves to the lane, where any worker may
-- take it (the worker is busy or gone); one it read and stopped renewing is claimed as
-- above; an empty near stream whose worker has not fetched for a minute is removed.
-- KEYS[1..3]  <prefix>:lane:<lane>:high, :normal, :low
-- ARGV        prefix, lane, consumer, now_ms, lease_ms, count
-- Touches     <prefix>:job:<id>, <prefix>:backlog:<lane>, <prefix>:dead, <prefix>:events,
--             <prefix>:near:<lane> and the near streams it lists
-- Returns     rows as begin_one's.
local lane, consumer, now, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local left = tonumber(ARGV[6])
local out = {}
-- Claims `stream`'s pending entries idle past their lease; returns the set of pending
-- entry ids it saw.
local function claim_stale(stream)
  local seen = {}
  local pending = redis.call('XPENDING', stream, 'workers', '-', '+', 1000)
  for _, pe in ipairs(pending) do
    seen[pe[1]] = true
    if left > 0 then
      local entry, idle = pe[1], tonumber(pe[3])
      local e = redis.call('XRANGE', stream, entry, entry)
      local id = e[1] and entry_id(e[1][2])
      if not id then
        ack_later(stream, 'workers', entry)
      else
        local own = tonumber(redis.call('HGET', rec_key(id), 'lease_ms') or lease)
        if idle >= own then
          local claimed = redis.call('XCLAIM', stream, 'workers', consumer, own, entry, 'JUSTID')
          if #claimed > 0 then
            table.insert(out, begin_one(stream, entry, id, lane, consumer, now, lease))
            left = left - 1
          end
        end
      end
    end
  end
  return seen
end
for p = 1, 3 do
  if left <= 0 then break end
  if redis.call('EXISTS', KEYS[p]) == 1 then claim_stale(KEYS[p]) end
end
near_sweep(lane, now, claim_stale)
backlog_flush(lane)
acks_flush()
return out
