-- complete: records the results of a batch of jobs (completions that arrived together
-- from one process), each fenced by its lease. A success writes no event; it is counted.
-- KEYS[1]  <prefix>:counts   hash of counters (field `succeeded`)
-- ARGV     prefix, now_ms, ttl_ms, then per job 6 values: stream, entry, consumer,
--          attempt, id, result_json, keep_inputs (1: the output is ephemeral, held by
--          its worker only, so the inputs stay for a re-run; they expire with their TTL)
-- Touches  <prefix>:job:<id>, the lane streams named in ARGV, the job's input blobs;
--          for graph jobs <prefix>:children:<id>, its children's records, <prefix>:submit
-- Returns  one value per job: 1 recorded, -1 lease lost.
local now, ttl = ARGV[2], ARGV[3]
local out = {}
local done = 0
local i = 4
while i + 6 <= #ARGV do
  local stream, entry, consumer, attempt, id = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local rec = rec_key(id)
  if holds(rec, consumer, attempt, entry) then
    redis.call('HSET', rec, 'state', 'succeeded', 'result', ARGV[i + 5], 'finished_ms', now, 'updated_ms', now)
    redis.call('HINCRBY', rec, 'completions', 1)
    redis.call('XACK', stream, 'workers', entry)
    redis.call('XDEL', stream, entry)
    redis.call('PEXPIRE', rec, ttl)
    if ARGV[i + 6] ~= '1' then drop_inputs(id) end
    release_children(id, now)
    done = done + 1
    table.insert(out, 1)
  else
    table.insert(out, -1)
  end
  i = i + 7
end
if done > 0 then redis.call('HINCRBY', KEYS[1], 'succeeded', done) end
return out
