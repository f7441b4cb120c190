-- begin: starts the deliveries a blocking read handed to a worker.
-- KEYS[1..3]  <prefix>:lane:<lane>:high, :normal, :low
-- ARGV        prefix, lane, consumer, now_ms, lease_ms, then triples (stream, entry, id)
-- Touches     <prefix>:job:<id>, <prefix>:backlog:<lane>, <prefix>:dead, <prefix>:events
-- Returns     one row per entry, as begin_one's.
local lane, consumer, now, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local out = {}
local i = 6
while i + 2 <= #ARGV do
  if ARGV[i + 2] == '' then
    ack_later(ARGV[i], 'workers', ARGV[i + 1])
  else
    table.insert(out, begin_one(ARGV[i], ARGV[i + 1], ARGV[i + 2], lane, consumer, now, lease))
  end
  i = i + 3
end
backlog_flush(lane)
acks_flush()
return out
