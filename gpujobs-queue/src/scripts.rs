//! The Lua scripts: every hand-off of a job is one of these, so it happens entirely or
//! not at all. Keys are built inside the scripts from the namespace (standalone Redis;
//! for Redis Cluster put the namespace in a hash tag, e.g. `{gpujobs}`).
//!
//! A worker's lease is fenced: `holds` checks that the record still names this worker,
//! this attempt and this stream entry, so a worker whose job was reclaimed cannot
//! complete, fail, renew or release it any more.

use redis::Script;

/// Helpers shared by the scripts. The events stream records submits and endings
/// (queued, succeeded, failed, dead, retrying, cancelled), not every intermediate step:
/// each event is a write on the hot path.
const PRELUDE: &str = r#"
local ns = ARGV[1]
local function rec_key(id) return ns .. ':job:' .. id end
local function event(id, state, extra_k, extra_v)
  if extra_k then
    redis.call('XADD', ns .. ':events', 'MAXLEN', '~', EVENTS_MAX, '*', 'id', id, 'state', state, extra_k, extra_v)
  else
    redis.call('XADD', ns .. ':events', 'MAXLEN', '~', EVENTS_MAX, '*', 'id', id, 'state', state)
  end
end
local function dead_letter(id, kind, reason, attempts, now, raw)
  return redis.call('XADD', ns .. ':dead', 'MAXLEN', '~', DEAD_MAX, '*', 'id', id, 'kind', kind, 'reason', reason,
    'attempts', attempts, 'at_ms', now, 'raw', raw)
end
local function holds(rec, consumer, attempt, entry)
  local f = redis.call('HMGET', rec, 'state', 'worker', 'attempts', 'entry')
  return f[1] == 'running' and f[2] == consumer and f[3] == attempt and f[4] == entry
end
local function backlog_add(lane, est, sign)
  if est and est ~= '' and lane and lane ~= '' then
    redis.call('INCRBYFLOAT', ns .. ':backlog:' .. lane, sign .. est)
  end
end
-- Starts delivery `entry` of job `id` from `stream` to `consumer`: counts the attempt,
-- or dead-letters a job out of attempts, or drops an entry whose job has ended.
-- Returns {1, id, entry, attempts, env, cancel, created_us, stream}, {0, id, entry}
-- (dropped) or {-1, id, entry} (dead).
local function begin_one(stream, entry, id, lane, consumer, now, lease_ms)
  local rec = rec_key(id)
  local f = redis.call('HMGET', rec, 'state', 'entry', 'est', 'worker', 'max_attempts', 'kind')
  local st = f[1]
  if (not st) or (st ~= 'placed' and st ~= 'running') or f[2] ~= entry then
    redis.call('XACK', stream, 'workers', entry)
    redis.call('XDEL', stream, entry)
    return {0, id, entry}
  end
  if st == 'placed' then backlog_add(lane, f[3], '-') end
  local attempts = redis.call('HINCRBY', rec, 'attempts', 1)
  local max = tonumber(f[5] or '1')
  if attempts > max then
    redis.call('HINCRBY', rec, 'attempts', -1)
    local reason = 'lease expired on attempt ' .. (attempts - 1) .. ' of ' .. max .. ' (worker ' .. (f[4] or '?') .. ' stopped renewing it)'
    local d = dead_letter(id, f[6] or '', reason, attempts - 1, now, '')
    redis.call('HSET', rec, 'state', 'dead', 'error', cjson.encode({class = 'temporary', message = reason}),
      'finished_ms', now, 'updated_ms', now, 'dead_entry', d)
    redis.call('XACK', stream, 'workers', entry)
    redis.call('XDEL', stream, entry)
    event(id, 'dead')
    return {-1, id, entry}
  end
  redis.call('HSET', rec, 'state', 'running', 'worker', consumer, 'started_ms', now, 'updated_ms', now, 'lease_ms', lease_ms)
  local g = redis.call('HMGET', rec, 'env', 'cancel', 'created_us')
  return {1, id, entry, attempts, g[1], g[2] or '0', g[3] or '0', stream}
end
"#;

fn script(body: &str, events_max: u64, dead_max: u64) -> Script {
    let prelude = PRELUDE
        .replace("EVENTS_MAX", &events_max.to_string())
        .replace("DEAD_MAX", &dead_max.to_string());
    Script::new(&format!("{prelude}\n{body}"))
}

/// ARGV: ns, id, env, kind, priority, device, max_attempts, created_us, now_ms.
/// Returns 1 when submitted, 0 when a job with this id already exists.
const SUBMIT: &str = r#"
local id = ARGV[2]
local rec = rec_key(id)
if redis.call('EXISTS', rec) == 1 then return 0 end
redis.call('HSET', rec, 'env', ARGV[3], 'kind', ARGV[4], 'state', 'queued', 'priority', ARGV[5], 'device', ARGV[6],
  'attempts', 0, 'max_attempts', ARGV[7], 'created_us', ARGV[8], 'updated_ms', ARGV[9], 'completions', 0, 'cancel', 0)
redis.call('XADD', ns .. ':submit', '*', 'job', ARGV[3])
event(id, 'queued', 'kind', ARGV[4])
return 1
"#;

/// ARGV: ns, submit_entry, id, env, kind, priority, device, max_attempts, created_us,
/// lane, placement_json, est_s, now_ms. Forwards a submitted job to its lane and
/// acknowledges the submit entry; drops entries of jobs cancelled meanwhile.
const PLACE: &str = r#"
local submit, id, lane, now = ns .. ':submit', ARGV[3], ARGV[10], ARGV[13]
local rec = rec_key(id)
local st = redis.call('HGET', rec, 'state')
if st and st ~= 'queued' then
  redis.call('XACK', submit, 'schedulers', ARGV[2])
  redis.call('XDEL', submit, ARGV[2])
  return 0
end
if not st then
  redis.call('HSET', rec, 'env', ARGV[4], 'kind', ARGV[5], 'priority', ARGV[6], 'device', ARGV[7], 'attempts', 0,
    'max_attempts', ARGV[8], 'created_us', ARGV[9], 'completions', 0, 'cancel', 0)
end
local prio = redis.call('HGET', rec, 'priority')
local entry = redis.call('XADD', ns .. ':lane:' .. lane .. ':' .. prio, '*', 'id', id)
redis.call('HSET', rec, 'state', 'placed', 'lane', lane, 'placement', ARGV[11], 'est', ARGV[12], 'entry', entry, 'updated_ms', now)
backlog_add(lane, ARGV[12], '')
redis.call('XACK', submit, 'schedulers', ARGV[2])
redis.call('XDEL', submit, ARGV[2])
return 1
"#;

/// ARGV: ns, submit_entry, id (or ''), kind, reason, raw, now_ms, error_json.
/// Moves a submitted entry that cannot run to the dead-letter stream.
const REJECT: &str = r#"
local submit, id, now = ns .. ':submit', ARGV[3], ARGV[7]
local dead_id = id ~= '' and id or ARGV[2]
local d = dead_letter(dead_id, ARGV[4], ARGV[5], 0, now, ARGV[6])
if id ~= '' then
  local rec = rec_key(id)
  local st = redis.call('HGET', rec, 'state')
  if (not st) or st == 'queued' then
    redis.call('HSET', rec, 'state', 'dead', 'kind', ARGV[4], 'error', ARGV[8], 'finished_ms', now, 'updated_ms', now,
      'dead_entry', d)
    if not st then redis.call('HSET', rec, 'attempts', 0, 'max_attempts', 1, 'created_us', now * 1000) end
  end
end
redis.call('XACK', submit, 'schedulers', ARGV[2])
redis.call('XDEL', submit, ARGV[2])
event(dead_id, 'dead')
return d
"#;

/// ARGV: ns, lane, consumer, now_ms, lease_ms, then triples (stream, entry, id).
const BEGIN: &str = r#"
local lane, consumer, now, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local out = {}
local i = 6
while i + 2 <= #ARGV do
  table.insert(out, begin_one(ARGV[i], ARGV[i + 1], ARGV[i + 2], lane, consumer, now, lease))
  i = i + 3
end
return out
"#;

/// ARGV: ns, lane, consumer, now_ms, lease_ms, count. Claims entries whose worker
/// stopped renewing them for longer than their own lease (each delivery records its
/// lease; `lease_ms` is the default for records without one), high priority first, and
/// begins them for `consumer` with `lease_ms`. Entries deleted from the stream
/// meanwhile are acknowledged. Scans the pending entries (jobs in flight, not the
/// backlog), at most 1000 per priority per call.
const RECLAIM: &str = r#"
local lane, consumer, now, lease = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local left = tonumber(ARGV[6])
local out = {}
for _, prio in ipairs({'high', 'normal', 'low'}) do
  if left <= 0 then break end
  local stream = ns .. ':lane:' .. lane .. ':' .. prio
  if redis.call('EXISTS', stream) == 1 then
    local pending = redis.call('XPENDING', stream, 'workers', '-', '+', 1000)
    for _, p in ipairs(pending) do
      if left <= 0 then break end
      local entry, idle = p[1], tonumber(p[3])
      local e = redis.call('XRANGE', stream, entry, entry)
      local id = nil
      if e[1] and e[1][2] then
        for j = 1, #e[1][2], 2 do if e[1][2][j] == 'id' then id = e[1][2][j + 1] end end
      end
      if not id then
        redis.call('XACK', stream, 'workers', entry)
        redis.call('XDEL', stream, entry)
      else
        local own = tonumber(redis.call('HGET', rec_key(id), 'lease_ms') or lease)
        if idle >= own then
          local claimed = redis.call('XCLAIM', stream, 'workers', consumer, own, entry, 'JUSTID')
          if #claimed > 0 then
            table.insert(out, begin_one(stream, entry, id, lane, consumer, now, lease))
            left = left - 1
          end
        end
      end
    end
  end
end
return out
"#;

/// ARGV: ns, stream, entry, consumer, attempt, id, lease_ms. Resets the entry's idle
/// time and sets its lease; returns 1 if cancellation was asked for, 0 if not, -1 if
/// the lease is lost.
const RENEW: &str = r#"
local rec = rec_key(ARGV[6])
if not holds(rec, ARGV[4], ARGV[5], ARGV[3]) then return -1 end
redis.call('XCLAIM', ARGV[2], 'workers', ARGV[4], 0, ARGV[3], 'JUSTID')
redis.call('HSET', rec, 'lease_ms', ARGV[7])
if redis.call('HGET', rec, 'cancel') == '1' then return 1 end
return 0
"#;

/// ARGV: ns, stream, entry, consumer, attempt, id, result_json, now_ms, ttl_ms.
const COMPLETE: &str = r#"
local id, now = ARGV[6], ARGV[8]
local rec = rec_key(id)
if not holds(rec, ARGV[4], ARGV[5], ARGV[3]) then return -1 end
redis.call('HSET', rec, 'state', 'succeeded', 'result', ARGV[7], 'finished_ms', now, 'updated_ms', now)
redis.call('HINCRBY', rec, 'completions', 1)
redis.call('XACK', ARGV[2], 'workers', ARGV[3])
redis.call('XDEL', ARGV[2], ARGV[3])
redis.call('PEXPIRE', rec, ARGV[9])
event(id, 'succeeded', 'worker', ARGV[4])
return 1
"#;

/// ARGV: ns, stream, entry, consumer, attempt, id, error_json, class, delay_ms, now_ms,
/// ttl_ms, lane, message. Returns the outcome: retrying, failed, dead, cancelled, or
/// -1 if the lease is lost.
const FAIL: &str = r#"
local id, class, now = ARGV[6], ARGV[8], tonumber(ARGV[10])
local rec = rec_key(id)
if not holds(rec, ARGV[4], ARGV[5], ARGV[3]) then return -1 end
redis.call('XACK', ARGV[2], 'workers', ARGV[3])
redis.call('XDEL', ARGV[2], ARGV[3])
redis.call('HSET', rec, 'error', ARGV[7], 'updated_ms', now)
local f = redis.call('HMGET', rec, 'cancel', 'attempts', 'max_attempts', 'kind', 'est')
if class == 'cancelled' or f[1] == '1' then
  redis.call('HSET', rec, 'state', 'cancelled', 'finished_ms', now)
  redis.call('PEXPIRE', rec, ARGV[11])
  event(id, 'cancelled')
  return 'cancelled'
end
local attempts, max = tonumber(f[2]), tonumber(f[3])
if class == 'permanent' or attempts >= max then
  local state = 'dead'
  local reason = 'failed on all ' .. max .. ' attempts; last error: ' .. ARGV[13]
  if class == 'permanent' then state = 'failed'; reason = ARGV[13] end
  local d = dead_letter(id, f[4] or '', reason, attempts, now, '')
  redis.call('HSET', rec, 'state', state, 'finished_ms', now, 'dead_entry', d)
  event(id, state)
  return state
end
redis.call('HSET', rec, 'state', 'placed', 'entry', '')
redis.call('ZADD', ns .. ':delayed:' .. ARGV[12], now + tonumber(ARGV[9]), id)
backlog_add(ARGV[12], f[5], '')
event(id, 'retrying')
return 'retrying'
"#;

/// ARGV: ns, stream, entry, consumer, attempt, id, lane, now_ms, ttl_ms. Gives a job
/// back without counting the attempt (graceful shutdown).
const RELEASE: &str = r#"
local id, lane, now = ARGV[6], ARGV[7], ARGV[8]
local rec = rec_key(id)
if not holds(rec, ARGV[4], ARGV[5], ARGV[3]) then return -1 end
redis.call('XACK', ARGV[2], 'workers', ARGV[3])
redis.call('XDEL', ARGV[2], ARGV[3])
redis.call('HINCRBY', rec, 'attempts', -1)
local f = redis.call('HMGET', rec, 'cancel', 'priority', 'est')
if f[1] == '1' then
  redis.call('HSET', rec, 'state', 'cancelled', 'finished_ms', now, 'updated_ms', now)
  redis.call('PEXPIRE', rec, ARGV[9])
  event(id, 'cancelled')
  return 0
end
local e = redis.call('XADD', ns .. ':lane:' .. lane .. ':' .. f[2], '*', 'id', id)
redis.call('HSET', rec, 'state', 'placed', 'entry', e, 'updated_ms', now)
backlog_add(lane, f[3], '')
event(id, 'placed', 'lane', lane)
return 1
"#;

/// ARGV: ns, lane, now_ms, limit. Moves retries whose backoff has passed to their lane.
const PROMOTE: &str = r#"
local lane, now = ARGV[2], ARGV[3]
local z = ns .. ':delayed:' .. lane
local ids = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  redis.call('ZREM', z, id)
  local rec = rec_key(id)
  local f = redis.call('HMGET', rec, 'state', 'priority')
  if f[1] == 'placed' then
    local e = redis.call('XADD', ns .. ':lane:' .. lane .. ':' .. f[2], '*', 'id', id)
    redis.call('HSET', rec, 'entry', e)
  end
end
return #ids
"#;

/// ARGV: ns, id, now_ms, ttl_ms. Returns notfound, requested, cancelled or finished:<state>.
const CANCEL: &str = r#"
local id, now = ARGV[2], ARGV[3]
local rec = rec_key(id)
local f = redis.call('HMGET', rec, 'state', 'lane', 'entry', 'priority', 'est')
local st = f[1]
if not st then return 'notfound' end
if st == 'succeeded' or st == 'failed' or st == 'dead' or st == 'cancelled' then return 'finished:' .. st end
if st == 'running' then
  redis.call('HSET', rec, 'cancel', 1)
  return 'requested'
end
if st == 'placed' then
  if f[3] and f[3] ~= '' then redis.call('XDEL', ns .. ':lane:' .. f[2] .. ':' .. f[4], f[3]) end
  redis.call('ZREM', ns .. ':delayed:' .. f[2], id)
  backlog_add(f[2], f[5], '-')
end
redis.call('HSET', rec, 'state', 'cancelled', 'finished_ms', now, 'updated_ms', now)
redis.call('PEXPIRE', rec, ARGV[4])
event(id, 'cancelled')
return 'cancelled'
"#;

/// ARGV: ns, id, now_ms. Re-submits a dead or failed job with fresh attempts.
const RETRY_DEAD: &str = r#"
local id, now = ARGV[2], ARGV[3]
local rec = rec_key(id)
local f = redis.call('HMGET', rec, 'state', 'dead_entry', 'env')
if (f[1] ~= 'dead' and f[1] ~= 'failed') or not f[3] then return 0 end
if f[2] then redis.call('XDEL', ns .. ':dead', f[2]) end
redis.call('HSET', rec, 'state', 'queued', 'attempts', 0, 'cancel', 0, 'updated_ms', now, 'completions', 0)
redis.call('HDEL', rec, 'error', 'finished_ms', 'dead_entry', 'entry', 'worker', 'result', 'lane', 'placement', 'est')
redis.call('PERSIST', rec)
redis.call('XADD', ns .. ':submit', '*', 'job', f[3])
event(id, 'queued')
return 1
"#;

/// The loaded scripts.
pub(crate) struct Scripts {
    pub(crate) submit: Script,
    pub(crate) place: Script,
    pub(crate) reject: Script,
    pub(crate) begin: Script,
    pub(crate) reclaim: Script,
    pub(crate) renew: Script,
    pub(crate) complete: Script,
    pub(crate) fail: Script,
    pub(crate) release: Script,
    pub(crate) promote: Script,
    pub(crate) cancel: Script,
    pub(crate) retry_dead: Script,
}

impl Scripts {
    pub(crate) fn new(events_max: u64, dead_max: u64) -> Self {
        let s = |body| script(body, events_max, dead_max);
        Scripts {
            submit: s(SUBMIT),
            place: s(PLACE),
            reject: s(REJECT),
            begin: s(BEGIN),
            reclaim: s(RECLAIM),
            renew: s(RENEW),
            complete: s(COMPLETE),
            fail: s(FAIL),
            release: s(RELEASE),
            promote: s(PROMOTE),
            cancel: s(CANCEL),
            retry_dead: s(RETRY_DEAD),
        }
    }
}
