-- submit: records a new job and appends it to the submit stream.
-- KEYS[1]  <prefix>:submit   the submit stream
-- ARGV     prefix, id, env_json, kind, priority, device, max_attempts, created_us, now_ms
-- Touches  <prefix>:job:<id>, <prefix>:events
-- Returns  1 when submitted, 0 when a job with this id already exists.
local id = ARGV[2]
local rec = rec_key(id)
if redis.call('EXISTS', rec) == 1 then return 0 end
redis.call('HSET', rec, 'env', ARGV[3], 'kind', ARGV[4], 'state', 'queued', 'priority', ARGV[5], 'device', ARGV[6],
  'attempts', 0, 'max_attempts', ARGV[7], 'created_us', ARGV[8], 'updated_ms', ARGV[9], 'completions', 0, 'cancel', 0)
redis.call('XADD', KEYS[1], '*', 'job', ARGV[3])
event(id, 'queued', 'kind', ARGV[4])
return 1
