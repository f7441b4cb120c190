-- submit_graph: records the jobs of a graph at once. A job whose parents (the jobs
-- whose outputs it reads) have all succeeded is queued as a submit would queue it;
-- the others are recorded `waiting`, with `waiting_on` parents still to succeed, and
-- join the children set of each such parent (see release_children in lib.lua). Ids
-- that already exist are skipped: a graph submitted twice runs once.
-- KEYS[1]  <prefix>:submit   the submit stream
-- KEYS[2]  <prefix>:counts   hash of counters (fields `submitted`, `waiting`)
-- ARGV     prefix, now_ms, high_water, by_ref (1: a queued job's entry is id-only, as in
--          submit.lua), then per job, parents first: id, env_json, kind,
--          priority, device, max_attempts, created_us, blobs (JSON list of the names of
--          its input blobs), parents (space-separated ids)
-- Touches  <prefix>:job:<id> and <prefix>:children:<parent> of each job and parent,
--          <prefix>:graph:<g>: the set of the graph's job ids (g: the first job's
--          `{tag}`, or its id without one), also each record's `graph` field, so a
--          monitor can draw the graph from any of its jobs (expires after 7 days)
-- Returns  one value per job: 1 submitted, 0 already existed; or {'full', used, max}.
local now = ARGV[2]
local full = over_high_water(tonumber(ARGV[3]))
if full then return full end
local out = {}
local added, waiting_jobs = 0, 0
local ended = {}
local by_ref = ARGV[4] == '1'
local graph = string.match(ARGV[5] or '', '{([^}]+)}') or ARGV[5]
local members = {}
local i = 5
while i + 8 <= #ARGV do
  local id, parents = ARGV[i], ARGV[i + 8]
  local rec = rec_key(id)
  if redis.call('EXISTS', rec) == 1 then
    table.insert(out, 0)
  else
    local waiting = 0
    for parent in string.gmatch(parents, '%S+') do
      local st = redis.call('HGET', rec_key(parent), 'state')
      if st ~= 'succeeded' then
        waiting = waiting + 1
        redis.call('SADD', ns .. ':children:' .. parent, id)
        if st == 'failed' or st == 'dead' or st == 'cancelled' then ended[parent] = st end
      end
    end
    local state = 'queued'
    if waiting > 0 then state = 'waiting' end
    record_new(i, state, now)
    redis.call('HSET', rec, 'parents', parents, 'waiting_on', waiting, 'graph', graph)
    table.insert(members, id)
    if waiting == 0 and by_ref then
      redis.call('XADD', KEYS[1], '*', 'job', ref_entry(id))
    elseif waiting == 0 then
      redis.call('XADD', KEYS[1], '*', 'job', ARGV[i + 1])
    else
      waiting_jobs = waiting_jobs + 1
    end
    added = added + 1
    table.insert(out, 1)
  end
  i = i + 9
end
if waiting_jobs > 0 then redis.call('HINCRBY', KEYS[2], 'waiting', waiting_jobs) end
-- A graph resubmitted after one of its jobs failed: its new dependants fail now.
for parent, st in pairs(ended) do fail_dependants(parent, st, now) end
if added > 0 then
  redis.call('HINCRBY', KEYS[2], 'submitted', added)
  local gkey = ns .. ':graph:' .. graph
  for k = 1, #members, 1000 do
    redis.call('SADD', gkey, unpack(members, k, math.min(k + 999, #members)))
  end
  redis.call('PEXPIRE', gkey, 604800000)
end
return out
