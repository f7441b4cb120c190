-- Helpers prepended to every script (see src/scripts/mod.rs).
--
-- Every script runs inside one partition: ARGV[1] is the partition's key prefix, a
-- Redis Cluster hash tag such as `{gpujobs}` or `{gpujobs:3}`, and every key a script
-- touches starts with it, so all of them live in one slot. KEYS[1] is always one of
-- those keys: Redis Cluster routes the call by it. Per-job keys (`<prefix>:job:<id>`)
-- are built here from the prefix; they share the slot.
--
-- The events stream records endings other than success (failed, dead, retrying,
-- cancelled, placed after a release, queued after a dead-letter retry): submits and
-- successes are counted in `<prefix>:counts` instead: an event per job is a hot-path write.
local ns = ARGV[1]
local function rec_key(id) return ns .. ':job:' .. id end
local function event(id, state, extra_k, extra_v)
  if extra_k then
    redis.call('XADD', ns .. ':events', 'MAXLEN', '~', EVENTS_MAX, '*', 'id', id, 'state', state, extra_k, extra_v)
  else
    redis.call('XADD', ns .. ':events', 'MAXLEN', '~', EVENTS_MAX, '*', 'id', id, 'state', state)
  end
end
-- Successes recorded by one `complete` call, as one entry of the capped
-- `<prefix>:finished` stream (field: job id, value: worker) for the history keeper.
local function finished_entry(pairs_list)
  redis.call('XADD', ns .. ':finished', 'MAXLEN', '~', EVENTS_MAX, '*', unpack(pairs_list))
end
local function dead_letter(id, kind, reason, attempts, now, raw)
  return redis.call('XADD', ns .. ':dead', 'MAXLEN', '~', DEAD_MAX, '*', 'id', id, 'kind', kind, 'reason', reason,
    'attempts', attempts, 'at_ms', now, 'raw', raw)
end
-- Stream entries a script is done with, acknowledged and deleted together when it
-- ends (`acks_flush`): one XACK and one XDEL per stream and call instead of two per job,
-- since commands per job are what the queue costs Redis. Deferring them changes nothing
-- another client can see: a script runs atomically. Each stream here has one group.
local acks = {}
local function ack_later(stream, group, entry)
  local a = acks[stream]
  if not a then
    a = {group = group}
    acks[stream] = a
  end
  a[#a + 1] = entry
end
local function acks_flush()
  for stream, a in pairs(acks) do
    -- In chunks: unpack is bounded by Lua's C stack.
    for s = 1, #a, 1000 do
      local e = math.min(s + 999, #a)
      redis.call('XACK', stream, a.group, unpack(a, s, e))
      redis.call('XDEL', stream, unpack(a, s, e))
    end
  end
  acks = {}
end
-- Deletes the input blobs of job `id` (`blob:<id>:<name>`), named by its record's
-- `blobs` field: a JSON list of names the Rust side wrote at submit from the envelope's
-- tensors, so no script parses an envelope. Output blobs (`blob:<id>:out:*`) stay
-- until the record expires; a record without the field (written before it existed)
-- leaves its inputs to expire with their TTL.
-- `list`: the field's value when the caller already read it (false: absent).
local function drop_inputs(id, list)
  if list == nil then list = redis.call('HGET', rec_key(id), 'blobs') end
  if (not list) or list == '[]' then return end
  local ok, names = pcall(cjson.decode, list)
  if (not ok) or type(names) ~= 'table' then return end
  for _, name in ipairs(names) do
    if type(name) == 'string' then redis.call('DEL', ns .. ':blob:' .. id .. ':' .. name) end
  end
end
-- Retention by count: `ids` just succeeded join `<prefix>:succeeded` (a list, oldest
-- first); past `keep` entries the oldest are taken off it and, when their record still
-- says succeeded (an id submitted again since is a new job) and the job is not part of
-- a graph (a child may still have to read its outputs; graph jobs go by age only),
-- their record and output blobs (`out:t0`, `out:t1`, ...: outputs are numbered) are
-- deleted. At most 2 * #ids + 100 go per call.
local function forget_oldest_successes(ids, keep)
  local list = ns .. ':succeeded'
  local n = redis.call('RPUSH', list, unpack(ids))
  if n <= keep then return end
  local surplus = math.min(n - keep, 2 * #ids + 100)
  for _, old in ipairs(redis.call('LPOP', list, surplus)) do
    local rec = rec_key(old)
    local f = redis.call('HMGET', rec, 'state', 'graph')
    if f[1] == 'succeeded' and not f[2] then
      redis.call('DEL', rec)
      local k = 0
      while k < 4096 and redis.call('DEL', ns .. ':blob:' .. old .. ':out:t' .. k) == 1 do k = k + 1 end
    end
  end
end
-- Graph edges: `<prefix>:children:<id>` is the set of jobs waiting for job `id`'s
-- outputs; each child's record counts the parents it still waits for (`waiting_on`),
-- and `<prefix>:counts` field `waiting` the partition's jobs in state `waiting`.
-- A parent's success queues each child whose count reaches zero (its envelope is
-- appended to the submit stream, as a submit would).
local function release_children(id, now)
  local set = ns .. ':children:' .. id
  local children = redis.call('SMEMBERS', set)
  if #children == 0 then return end
  redis.call('DEL', set)
  for _, child in ipairs(children) do
    local crec = rec_key(child)
    local f = redis.call('HMGET', crec, 'state', 'env')
    if f[1] == 'waiting' then
      if redis.call('HINCRBY', crec, 'waiting_on', -1) <= 0 then
        redis.call('HSET', crec, 'state', 'queued', 'updated_ms', now)
        redis.call('HINCRBY', ns .. ':counts', 'waiting', -1)
        -- Who made each parent's output (its cache holds it), for placement by locality.
        local hold = {}
        for parent in string.gmatch(redis.call('HGET', crec, 'parents') or '', '%S+') do
          local p = redis.call('HMGET', rec_key(parent), 'state', 'worker')
          if p[1] == 'succeeded' and p[2] then table.insert(hold, {parent, p[2]}) end
        end
        if #hold > 0 then
          redis.call('XADD', ns .. ':submit', '*', 'job', f[2], 'holders', cjson.encode(hold))
        else
          redis.call('XADD', ns .. ':submit', '*', 'job', f[2])
        end
      end
    end
  end
end
-- A parent that ended without a result (`state`: failed, dead, cancelled) fails every
-- job waiting on it, directly or through others, naming it (`failed_by`); like any
-- failed job each is dead-lettered. Their inputs (until their TTL) and the children
-- sets stay, so retrying the parent (`retry_dead.lua`) can make them wait again.
local function fail_dependants(root, state, now)
  local stack = {}
  for _, c in ipairs(redis.call('SMEMBERS', ns .. ':children:' .. root)) do table.insert(stack, {c, root}) end
  while #stack > 0 do
    local top = table.remove(stack)
    local child, parent = top[1], top[2]
    local crec = rec_key(child)
    local f = redis.call('HMGET', crec, 'state', 'kind')
    if f[1] == 'waiting' then
      local reason = 'parent job ' .. root .. ' ended ' .. state
      if parent ~= root then reason = 'parent job ' .. parent .. ' cannot run: job ' .. root .. ' ended ' .. state end
      local d = dead_letter(child, f[2] or '', reason, 0, now, '')
      redis.call('HSET', crec, 'state', 'failed', 'error', cjson.encode({class = 'permanent', message = reason}),
        'finished_ms', now, 'updated_ms', now, 'dead_entry', d, 'waiting_on', 0, 'failed_by', root)
      event(child, 'failed')
      redis.call('HINCRBY', ns .. ':counts', 'waiting', -1)
      for _, g in ipairs(redis.call('SMEMBERS', ns .. ':children:' .. child)) do table.insert(stack, {g, child}) end
    end
  end
end
-- The fields of a new job's record, as a client's submit (record_new) and a plain
-- `XADD`'s first placement (place.lua) both write them. `cancel` and `completions` are
-- left out until they are set (absent reads as 0, in every script and reader), and
-- `blobs` (the JSON list of the job's input blob names) when the job has none (absent:
-- nothing to delete): a record with at most 16 fields keeps Redis's smallest hash
-- table, and each field costs ~60 bytes in it (docs/benchmarks.md, Redis memory per job).
local function new_record_fields(env, kind, priority, device, max_attempts, created_us, blobs)
  local set = {'env', env, 'kind', kind, 'priority', priority, 'device', device, 'attempts', 0,
    'max_attempts', max_attempts, 'created_us', created_us}
  if blobs ~= '[]' then
    set[#set + 1] = 'blobs'
    set[#set + 1] = blobs
  end
  return set
end
-- Writes the record of a new job from the eight submit arguments at ARGV[i]: id,
-- env_json, kind, priority, device, max_attempts, created_us, blobs (submit and
-- submit_graph).
local function record_new(i, state, now)
  local set = new_record_fields(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
    ARGV[i + 7])
  for _, v in ipairs({'state', state, 'updated_ms', now}) do set[#set + 1] = v end
  redis.call('HSET', rec_key(ARGV[i]), unpack(set))
end
-- Refuses new work above the high-water mark (the share of maxmemory kept for the
-- results of jobs already accepted; 0 turns it off): {'full', used, max}, else nil.
local function over_high_water(high_water)
  if high_water and high_water > 0 then
    local info = redis.call('INFO', 'memory')
    local used = tonumber(string.match(info, 'used_memory:(%d+)') or '0')
    local max = tonumber(string.match(info, 'maxmemory:(%d+)') or '0')
    if max > 0 and used > high_water * max then return {'full', tostring(used), tostring(max)} end
  end
  return nil
end
-- A worker's lease is fenced: the record must still name this worker, this attempt
-- and this stream entry, so a worker whose job was reclaimed cannot end it any more.
local function holds(rec, consumer, attempt, entry)
  local f = redis.call('HMGET', rec, 'state', 'worker', 'attempts', 'entry')
  return f[1] == 'running' and f[2] == consumer and f[3] == attempt and f[4] == entry
end
local function backlog_add(lane, est, sign)
  if est and est ~= '' and lane and lane ~= '' then
    redis.call('INCRBYFLOAT', ns .. ':backlog:' .. lane, sign .. est)
  end
end
-- Estimates of jobs a batch script took off a lane, subtracted once at its end
-- (`backlog_flush`) instead of one INCRBYFLOAT per job.
local backlog_taken = 0
local function backlog_flush(lane)
  if backlog_taken > 0 and lane and lane ~= '' then
    redis.call('INCRBYFLOAT', ns .. ':backlog:' .. lane, string.format('%.9f', -backlog_taken))
  end
  backlog_taken = 0
end
-- Starts delivery `entry` of job `id` from `stream` to `consumer`: counts the attempt,
-- or dead-letters a job out of attempts, or drops an entry whose job has ended. The
-- caller ends with `backlog_flush(lane)` and `acks_flush()`.
-- Returns {1, id, entry, attempts, env, cancel, created_us, stream, est}, {0, id, entry}
-- (dropped) or {-1, id, entry} (dead); est is the placement's run estimate, seconds.
local function begin_one(stream, entry, id, lane, consumer, now, lease_ms)
  local rec = rec_key(id)
  local f = redis.call('HMGET', rec, 'state', 'entry', 'est', 'worker', 'max_attempts', 'kind', 'attempts', 'env',
    'cancel', 'created_us')
  local st = f[1]
  if (not st) or (st ~= 'placed' and st ~= 'running') or f[2] ~= entry then
    ack_later(stream, 'workers', entry)
    return {0, id, entry}
  end
  if st == 'placed' then backlog_taken = backlog_taken + (tonumber(f[3] or '') or 0) end
  local attempts = tonumber(f[7] or '0') + 1
  local max = tonumber(f[5] or '1')
  if attempts > max then
    local reason = 'lease expired on attempt ' .. (attempts - 1) .. ' of ' .. max .. ' (worker ' .. (f[4] or '?') .. ' stopped renewing it)'
    local d = dead_letter(id, f[6] or '', reason, attempts - 1, now, '')
    redis.call('HSET', rec, 'state', 'dead', 'error', cjson.encode({class = 'temporary', message = reason}),
      'finished_ms', now, 'updated_ms', now, 'dead_entry', d)
    ack_later(stream, 'workers', entry)
    drop_inputs(id)
    event(id, 'dead')
    fail_dependants(id, 'dead', now)
    return {-1, id, entry}
  end
  redis.call('HSET', rec, 'state', 'running', 'attempts', attempts, 'worker', consumer, 'started_ms', now,
    'updated_ms', now, 'lease_ms', lease_ms)
  return {1, id, entry, attempts, f[8], f[9] or '0', f[10] or '0', stream, f[3] or ''}
end
-- Offers job `id` to `worker` alone (placement by locality) on the worker's near
-- stream `<prefix>:near:<lane>:<worker>` until `until_ms`; reclaim then moves it to the
-- lane. The worker is listed in the sorted set `<prefix>:near:<lane>` (score: when it
-- last placed or fetched there), which reclaim scans. Returns the entry id.
local function near_add(lane, worker, id, until_ms, now)
  local near = ns .. ':near:' .. lane .. ':' .. worker
  if redis.call('EXISTS', near) == 0 then
    redis.call('XGROUP', 'CREATE', near, 'workers', '0', 'MKSTREAM')
  end
  redis.call('ZADD', ns .. ':near:' .. lane, now, worker)
  return redis.call('XADD', near, '*', 'id', id, 'until', tostring(until_ms))
end
-- Moves the entries of worker `w`'s near stream that it has not read (none of
-- `delivered`, a set of entry ids) to the lane streams of their jobs' priorities: all
-- of them when `all`, else those past their `until`. Entries of jobs no longer placed
-- there are deleted.
local function near_move(lane, w, delivered, all, now)
  local near = ns .. ':near:' .. lane .. ':' .. w
  for _, e in ipairs(redis.call('XRANGE', near, '-', '+', 'COUNT', 1000)) do
    if not delivered[e[1]] then
      local id, due = nil, 0
      for j = 1, #e[2], 2 do
        if e[2][j] == 'id' then id = e[2][j + 1] elseif e[2][j] == 'until' then due = tonumber(e[2][j + 1]) or 0 end
      end
      if all or due <= tonumber(now) then
        redis.call('XDEL', near, e[1])
        if id then
          local rec = rec_key(id)
          local f = redis.call('HMGET', rec, 'state', 'entry', 'priority')
          if f[1] == 'placed' and f[2] == e[1] then
            local le = redis.call('XADD', ns .. ':lane:' .. lane .. ':' .. f[3], '*', 'id', id)
            redis.call('HSET', rec, 'entry', le, 'near', '', 'updated_ms', now)
          end
        end
      end
    end
  end
end
-- The entry ids pending (delivered, not yet acknowledged) on a near stream.
local function pending_set(stream)
  local seen = {}
  for _, pe in ipairs(redis.call('XPENDING', stream, 'workers', '-', '+', 1000)) do seen[pe[1]] = true end
  return seen
end
-- Sweeps the near streams of `lane` (oldest-active workers first, at most 100): moves
-- entries past their `until` that were not read to the lane (`delivered_of(stream)`
-- returns the read ones, and may claim them), and deletes an empty near stream whose
-- worker has not fetched for a minute.
local function near_sweep(lane, now, delivered_of)
  local near_set = ns .. ':near:' .. lane
  for _, w in ipairs(redis.call('ZRANGE', near_set, 0, 99)) do
    local near = near_set .. ':' .. w
    if redis.call('EXISTS', near) == 0 then
      redis.call('ZREM', near_set, w)
    else
      near_move(lane, w, delivered_of(near), false, now)
      local seen = tonumber(redis.call('ZSCORE', near_set, w) or '0')
      if redis.call('XLEN', near) == 0 and seen < tonumber(now) - 60000 then
        redis.call('DEL', near)
        redis.call('ZREM', near_set, w)
      end
    end
  end
end
-- The stream a placed job's entry is on: its worker's near stream or its lane's.
local function entry_stream(lane, prio, near)
  if near and near ~= '' then return ns .. ':near:' .. lane .. ':' .. near end
  return ns .. ':lane:' .. lane .. ':' .. prio
end
-- The `job` value of job `id`'s id-only submit entry (submit, submit_graph), spelt as
-- ref_of below matches it without the JSON decoder.
local function ref_entry(id)
  return '{"id":' .. cjson.encode(id) .. ',"ref":true}'
end
-- The job id of an id-only submit entry's `job` value (`{"id":"<id>","ref":true}`,
-- exactly these two fields, as codec::ref_of reads it; see src/queue/entry_form.rs), or
-- nil for an envelope.
local function ref_of(v)
  if #v > 300 then return nil end
  -- The spelling the submit scripts write, without the JSON decoder; any other (key
  -- order, spaces, escapes in the id) through it.
  local id = string.match(v, '^{"id":"([^"\\]*)","ref":true}$')
  if id then return id end
  if not string.find(v, '"ref"', 1, true) then return nil end
  local ok, t = pcall(cjson.decode, v)
  if not (ok and type(t) == 'table' and t.ref == true and type(t.id) == 'string') then return nil end
  for k in pairs(t) do
    if k ~= 'id' and k ~= 'ref' then return nil end
  end
  return t.id
end
-- The `id` field of stream entries read with XREADGROUP / XRANGE.
local function entry_id(fields)
  if fields then
    for j = 1, #fields, 2 do if fields[j] == 'id' then return fields[j + 1] end end
  end
  return nil
end
