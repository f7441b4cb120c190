-- fail: records a failed attempt: retry after a backoff, failed (permanent error),
-- dead (out of attempts) or cancelled.
-- KEYS[1]  the lane stream the entry is on
-- KEYS[2]  <prefix>:delayed:<lane>
-- ARGV     prefix, entry, consumer, attempt, id, error_json, class, delay_ms, now_ms,
--          ttl_ms, lane, message
-- Touches  <prefix>:job:<id>, <prefix>:backlog:<lane>, <prefix>:dead, <prefix>:events,
--          the job's input blobs when it ends, and its dependants in a graph
--          (<prefix>:children:<id> and their records)
-- Returns  retrying, failed, dead, cancelled, or -1 if the lease is lost.
local id, class, now = ARGV[5], ARGV[7], tonumber(ARGV[9])
local rec = rec_key(id)
if not holds(rec, ARGV[3], ARGV[4], ARGV[2]) then return -1 end
redis.call('XACK', KEYS[1], 'workers', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HSET', rec, 'error', ARGV[6], 'updated_ms', now)
local f = redis.call('HMGET', rec, 'cancel', 'attempts', 'max_attempts', 'kind', 'est')
if class == 'cancelled' or f[1] == '1' then
  redis.call('HSET', rec, 'state', 'cancelled', 'finished_ms', now)
  redis.call('PEXPIRE', rec, ARGV[10])
  drop_inputs(id)
  event(id, 'cancelled')
  fail_dependants(id, 'cancelled', now)
  return 'cancelled'
end
local attempts, max = tonumber(f[2]), tonumber(f[3])
if class == 'permanent' or attempts >= max then
  local state = 'dead'
  local reason = 'failed on all ' .. max .. ' attempts; last error: ' .. ARGV[12]
  if class == 'permanent' then state = 'failed'; reason = ARGV[12] end
  local d = dead_letter(id, f[4] or '', reason, attempts, now, '')
  redis.call('HSET', rec, 'state', state, 'finished_ms', now, 'dead_entry', d)
  drop_inputs(id)
  event(id, state)
  fail_dependants(id, state, now)
  return state
end
redis.call('HSET', rec, 'state', 'placed', 'entry', '', 'near', '')
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[8]), id)
backlog_add(ARGV[11], f[5], '')
event(id, 'retrying')
return 'retrying'
