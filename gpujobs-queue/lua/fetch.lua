-- fetch: one round trip for a worker's fetch when work is waiting. Promotes retries
-- whose backoff has passed, reads up to `max` entries: first those placed on this
-- consumer by locality (its near stream), then the lane's (high, normal, low by the
-- quotas the caller computed, then any priority for slots left over), and begins them
-- for `consumer`.
-- KEYS[1..3]  <prefix>:lane:<lane>:high, :normal, :low
-- KEYS[4]     <prefix>:delayed:<lane>   retries waiting out their backoff
-- KEYS[5]     <prefix>:near:<lane>:<consumer>   jobs placed on this consumer
-- ARGV        prefix, lane, consumer, now_ms, lease_ms, own (1: re-read this consumer's
--             own pending entries instead of new ones), quota_high, quota_normal,
--             quota_low, max, promote_limit
-- Touches     <prefix>:job:<id>, <prefix>:backlog:<lane>
-- Returns     {next_due_ms (-1: no retry waiting), rows} with rows as begin_one's.
local lane, consumer, now, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local delayed = KEYS[4]
local ids = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, tonumber(ARGV[11]))
for _, id in ipairs(ids) do
  redis.call('ZREM', delayed, id)
  local rec = rec_key(id)
  local f = redis.call('HMGET', rec, 'state', 'priority')
  if f[1] == 'placed' then
    local e = redis.call('XADD', ns .. ':lane:' .. lane .. ':' .. f[2], '*', 'id', id)
    redis.call('HSET', rec, 'entry', e, 'near', '')
  end
end
local rows = {}
local max = tonumber(ARGV[10])
local from = ARGV[6] == '1' and '0' or '>'
local function read(stream, count)
  if count <= 0 then return end
  local r = redis.call('XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT', count, 'STREAMS', stream, from)
  if not r then return end
  for _, s in ipairs(r) do
    for _, e in ipairs(s[2]) do
      local id = entry_id(e[2])
      if id then
        table.insert(rows, begin_one(stream, e[1], id, lane, consumer, now, lease))
      else
        ack_later(stream, 'workers', e[1])
      end
    end
  end
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  -- Still reading it: keep it off reclaim's list of abandoned near streams.
  redis.call('ZADD', ns .. ':near:' .. lane, now, consumer)
  read(KEYS[5], max)
end
for p = 1, 3 do read(KEYS[p], math.min(tonumber(ARGV[6 + p]), max - #rows)) end
-- Slots a priority left unused go to the others, most urgent first. Not when re-reading
-- this consumer's own entries: a read from '0' returns the same pending entries again,
-- and the first pass read each priority up to `max` already.
if from == '>' then
  for p = 1, 3 do read(KEYS[p], max - #rows) end
end
backlog_flush(lane)
acks_flush()
local next_due = -1
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if first[2] then next_due = math.floor(tonumber(first[2])) end
return {next_due, rows}
