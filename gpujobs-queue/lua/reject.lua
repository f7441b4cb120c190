-- reject: moves a submitted entry that cannot run to the dead-letter stream, with a
-- `dead` record when the entry's id could be read. An entry that names a queued job
-- whose record holds another envelope (the job was submitted with another entry, the
-- one that will run it) is dead-lettered alone, under its entry id: an entry someone
-- else wrote, mistaken or hostile, never ends a job it does not carry.
-- KEYS[1]  <prefix>:submit   the submit stream
-- ARGV     prefix, submit_entry, id (or ''), kind, reason, raw_excerpt, now_ms, error_json
-- Touches  <prefix>:job:<id>, <prefix>:dead, <prefix>:events, the job's input blobs,
--          its dependants in a graph
-- Returns  the dead-letter entry id.
local submit, entry, id, now = KEYS[1], ARGV[2], ARGV[3], ARGV[7]
local st, foreign = nil, false
if id ~= '' then
  local f = redis.call('HMGET', rec_key(id), 'state', 'env')
  st = f[1]
  if st == 'queued' and f[2] and f[2] ~= '' then
    -- The job's own entry is its envelope or an id-only entry naming it.
    local e = redis.call('XRANGE', submit, entry, entry)
    local job = ''
    if e[1] then
      for j = 1, #e[1][2], 2 do if e[1][2][j] == 'job' then job = e[1][2][j + 1] end end
    end
    foreign = job ~= f[2] and ref_of(job) ~= id
  end
end
if foreign then
  local d = dead_letter(entry, ARGV[4], 'names job `' .. id .. '`, which was submitted with another entry; '
    .. ARGV[5], 0, now, ARGV[6])
  event(entry, 'dead')
  redis.call('XACK', submit, 'schedulers', entry)
  redis.call('XDEL', submit, entry)
  return d
end
local dead_id = id ~= '' and id or entry
local d = dead_letter(dead_id, ARGV[4], ARGV[5], 0, now, ARGV[6])
if id ~= '' then
  local rec = rec_key(id)
  if (not st) or st == 'queued' then
    redis.call('HSET', rec, 'state', 'dead', 'kind', ARGV[4], 'error', ARGV[8], 'finished_ms', now, 'updated_ms', now,
      'dead_entry', d)
    if not st then redis.call('HSET', rec, 'attempts', 0, 'max_attempts', 1, 'created_us', now * 1000) end
    drop_inputs(id)
    fail_dependants(id, 'dead', now)
  end
end
redis.call('XACK', submit, 'schedulers', entry)
redis.call('XDEL', submit, entry)
event(dead_id, 'dead')
return d
