-- place: forwards a batch of submitted jobs to their lanes, each atomically with
-- acknowledging its submit entry; drops entries of jobs cancelled (or placed) meanwhile.
-- KEYS[1]  <prefix>:submit   the submit stream
-- ARGV     prefix, now_ms, wake (the wake-up channel, '' for none), then per job 13
--          values: submit_entry, id, kind, priority, device, max_attempts, created_us,
--          lane, placement_json, est_s, worker, wait_ms, blobs (JSON list of its input
--          blob names) (a job submitted with a plain XADD has no record yet: it is written
--          here, with the envelope read from its submit entry, so no envelope travels
--          twice). A job with a worker (placed by locality) goes to that worker's near
--          stream with `until` = now + wait_ms; after that reclaim moves it to the lane.
-- Touches  <prefix>:job:<id>, <prefix>:lane:<lane>:<priority>, <prefix>:backlog:<lane>,
--          <prefix>:near:<lane>:<worker>, <prefix>:near:<lane>
-- Publishes `<lane> <prefix>` on the wake-up channel once per lane that got jobs.
-- Returns  one value per job: 1 placed, 0 dropped.
local submit, now, wake = KEYS[1], ARGV[2], ARGV[3]
local out = {}
local added = {}
local i = 4
while i + 12 <= #ARGV do
  local entry, id, lane = ARGV[i], ARGV[i + 1], ARGV[i + 7]
  local rec = rec_key(id)
  local f = redis.call('HMGET', rec, 'state', 'priority')
  local st, prio = f[1], f[2]
  if st and st ~= 'queued' then
    table.insert(out, 0)
  else
    if not st then
      local e = redis.call('XRANGE', submit, entry, entry)
      local env = ''
      if e[1] and e[1][2] then
        for j = 1, #e[1][2], 2 do if e[1][2][j] == 'job' then env = e[1][2][j + 1] end end
      end
      prio = ARGV[i + 3]
      redis.call('HSET', rec, unpack(new_record_fields(env, ARGV[i + 2], prio, ARGV[i + 4], ARGV[i + 5],
        ARGV[i + 6], ARGV[i + 12])))
    end
    local worker, le = ARGV[i + 10], nil
    if worker ~= '' then
      le = near_add(lane, worker, id, tonumber(now) + tonumber(ARGV[i + 11]), now)
    else
      le = redis.call('XADD', ns .. ':lane:' .. lane .. ':' .. prio, '*', 'id', id)
    end
    -- `near` only when placed by locality: a record that never had one reads as ''.
    local set = {'state', 'placed', 'lane', lane, 'placement', ARGV[i + 8], 'est', ARGV[i + 9], 'entry', le,
      'updated_ms', now}
    if worker ~= '' then
      set[#set + 1] = 'near'
      set[#set + 1] = worker
    end
    redis.call('HSET', rec, unpack(set))
    added[lane] = (added[lane] or 0) + (tonumber(ARGV[i + 9]) or 0)
    table.insert(out, 1)
  end
  ack_later(submit, 'schedulers', entry)
  i = i + 13
end
acks_flush()
for lane, est in pairs(added) do
  if est > 0 then redis.call('INCRBYFLOAT', ns .. ':backlog:' .. lane, string.format('%.9f', est)) end
  if wake ~= '' then redis.call('PUBLISH', wake, lane .. ' ' .. ns) end
end
return out
