-- reject: moves a submitted entry that cannot run to the dead-letter stream, with a
-- `dead` record when the entry's id could be read.
-- KEYS[1]  <prefix>:submit   the submit stream
-- ARGV     prefix, submit_entry, id (or ''), kind, reason, raw_excerpt, now_ms, error_json
-- Touches  <prefix>:job:<id>, <prefix>:dead, <prefix>:events, the job's input blobs,
--          its dependants in a graph
-- Returns  the dead-letter entry id.
local submit, id, now = KEYS[1], ARGV[3], ARGV[7]
local dead_id = id ~= '' and id or ARGV[2]
local d = dead_letter(dead_id, ARGV[4], ARGV[5], 0, now, ARGV[6])
if id ~= '' then
  local rec = rec_key(id)
  local st = redis.call('HGET', rec, 'state')
  if (not st) or st == 'queued' then
    redis.call('HSET', rec, 'state', 'dead', 'kind', ARGV[4], 'error', ARGV[8], 'finished_ms', now, 'updated_ms', now,
      'dead_entry', d)
    if not st then redis.call('HSET', rec, 'attempts', 0, 'max_attempts', 1, 'created_us', now * 1000) end
    drop_inputs(id)
    fail_dependants(id, 'dead', now)
  end
end
redis.call('XACK', submit, 'schedulers', ARGV[2])
redis.call('XDEL', submit, ARGV[2])
event(dead_id, 'dead')
return d
