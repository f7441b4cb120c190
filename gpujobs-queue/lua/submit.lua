-- submit: records a batch of new jobs (the submits that arrived together from one
-- process) and appends each to the submit stream. Ids that already exist are skipped:
-- a job submitted twice runs once.
-- KEYS[1]  <prefix>:submit   the submit stream
-- KEYS[2]  <prefix>:counts   hash of counters (field `submitted`)
-- ARGV     prefix, now_ms, high_water, wake (the wake-up channel, '' for none), by_ref
--          (1: the entry's `job` is `{"id":<id>,"ref":true}`, the envelope being in
--          the record; 0: the envelope, as every scheduler reads it; see
--          src/queue/entry_form.rs), then per job 8 values: id, env_json, kind,
--          priority, device, max_attempts, created_us, blobs (JSON list of the names of
--          its input blobs)
--          (high_water: the share of maxmemory above which submits are refused, so the
--          rest is kept for the results of jobs already accepted; 0 turns it off)
-- Touches  <prefix>:job:<id>
-- Publishes `submit <prefix>` on the wake-up channel when it added jobs.
-- Returns  one value per job: 1 submitted, 0 already existed; or {'full', used, max}
--          (nothing submitted) above the high-water mark.
local now = ARGV[2]
local full = over_high_water(tonumber(ARGV[3]))
if full then return full end
local out = {}
local added = 0
local wake = ARGV[4]
local by_ref = ARGV[5] == '1'
local i = 6
while i + 7 <= #ARGV do
  local id = ARGV[i]
  local rec = rec_key(id)
  if redis.call('EXISTS', rec) == 1 then
    table.insert(out, 0)
  else
    record_new(i, 'queued', now)
    if by_ref then
      redis.call('XADD', KEYS[1], '*', 'job', ref_entry(id))
    else
      redis.call('XADD', KEYS[1], '*', 'job', ARGV[i + 1])
    end
    added = added + 1
    table.insert(out, 1)
  end
  i = i + 8
end
if added > 0 then
  redis.call('HINCRBY', KEYS[2], 'submitted', added)
  if wake ~= '' then redis.call('PUBLISH', wake, 'submit ' .. ns) end
end
return out
