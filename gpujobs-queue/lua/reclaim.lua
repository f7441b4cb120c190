-- reclaim: claims entries whose worker stopped renewing them for longer than their own
-- lease (each delivery records its lease; lease_ms is the default for records without
-- one), high priority first, and begins them for `consumer` with lease_ms. Entries
-- deleted from the stream meanwhile are acknowledged. Scans the pending entries (jobs in
-- flight, not the backlog), at most 1000 per priority per call.
-- KEYS[1..3]  <prefix>:lane:<lane>:high, :normal, :low
-- ARGV        prefix, lane, consumer, now_ms, lease_ms, count
-- Touches     <prefix>:job:<id>, <prefix>:backlog:<lane>, <prefix>:dead, <prefix>:events
-- Returns     rows as begin_one's.
local lane, consumer, now, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local left = tonumber(ARGV[6])
local out = {}
for p = 1, 3 do
  if left <= 0 then break end
  local stream = KEYS[p]
  if redis.call('EXISTS', stream) == 1 then
    local pending = redis.call('XPENDING', stream, 'workers', '-', '+', 1000)
    for _, pe in ipairs(pending) do
      if left <= 0 then break end
      local entry, idle = pe[1], tonumber(pe[3])
      local e = redis.call('XRANGE', stream, entry, entry)
      local id = e[1] and entry_id(e[1][2])
      if not id then
        redis.call('XACK', stream, 'workers', entry)
        redis.call('XDEL', stream, entry)
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
end
backlog_flush(lane)
return out
