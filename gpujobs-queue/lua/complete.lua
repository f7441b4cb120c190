-- complete: records the results of a batch of jobs (completions that arrived together
-- from one process), each fenced by its lease. A success writes no event; it is counted.
-- KEYS[1]  <prefix>:counts   hash of counters (field `succeeded`)
-- Also    <prefix>:finished  capped stream, one entry per call: field = each recorded
--          job's id, value = the worker; the history a dashboard indexes (one command
--          per batch, not per job)
-- Also    <prefix>:succeeded list of succeeded ids, oldest first, kept only with a
--          count (keep > 0): past it the oldest succeeded jobs' records and output
--          blobs are deleted (at most 2 per job recorded plus 100 per call, so lowering
--          the count drains the surplus over several calls instead of in one long one)
-- ARGV     prefix, now_ms, ttl_ms, keep (succeeded jobs this partition keeps, 0: no
--          count), then per job: stream, entry, consumer, attempt, id,
--          result_json, keep_inputs (1: the output is ephemeral, held by its worker
--          only, so the inputs stay for a re-run; they expire with their TTL), ni, ns,
--          ni pairs (blob key, value) and ns pairs (staged key, blob key): the attempt's
--          output blobs, small ones here, larger ones written under keys of its own
--          before this call. A recorded result sets and renames them into the job's
--          blob keys (expiring after ttl_ms); a lost lease writes nothing and deletes
--          the staged ones, so a late attempt never replaces the recorded outputs.
-- Touches  <prefix>:job:<id>, the lane streams named in ARGV, the job's input and output blobs;
--          for graph jobs <prefix>:children:<id>, its children's records, <prefix>:submit
-- Returns  one value per job: 1 recorded, -1 lease lost.
local now, ttl, keep = ARGV[2], ARGV[3], tonumber(ARGV[4]) or 0
local out = {}
local done = 0
local finished = {}
local recorded = {}
local i = 5
while i + 8 <= #ARGV do
  local stream, entry, consumer, attempt, id = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local ni, nst = tonumber(ARGV[i + 7]) or 0, tonumber(ARGV[i + 8]) or 0
  local inl, stg = i + 9, i + 9 + 2 * ni
  local rec = rec_key(id)
  -- The lease check, and what the recording needs, in one read.
  local f = redis.call('HMGET', rec, 'state', 'worker', 'attempts', 'entry', 'completions', 'blobs')
  if f[1] == 'running' and f[2] == consumer and f[3] == attempt and f[4] == entry then
    for k = 0, ni - 1 do
      redis.call('SET', ARGV[inl + 2 * k], ARGV[inl + 2 * k + 1], 'PX', ttl)
    end
    for k = 0, nst - 1 do
      redis.pcall('RENAME', ARGV[stg + 2 * k], ARGV[stg + 2 * k + 1])
    end
    redis.call('HSET', rec, 'state', 'succeeded', 'result', ARGV[i + 5], 'finished_ms', now, 'updated_ms', now,
      'completions', (tonumber(f[5]) or 0) + 1)
    ack_later(stream, 'workers', entry)
    redis.call('PEXPIRE', rec, ttl)
    if ARGV[i + 6] ~= '1' then drop_inputs(id, f[6]) end
    release_children(id, now)
    done = done + 1
    table.insert(finished, id)
    table.insert(finished, consumer)
    table.insert(recorded, id)
    table.insert(out, 1)
  else
    for k = 0, nst - 1 do redis.call('DEL', ARGV[stg + 2 * k]) end
    table.insert(out, -1)
  end
  i = stg + 2 * nst
end
acks_flush()
if done > 0 then
  redis.call('HINCRBY', KEYS[1], 'succeeded', done)
  finished_entry(finished)
  if keep > 0 then forget_oldest_successes(recorded, keep) end
end
return out
