-- take: delivers new submit entries to a scheduler, stopping before their bodies could
-- pass a byte budget. A plain XREADGROUP COUNT n returns n bodies whatever their size;
-- here each read asks only for as many entries as fit in what is left of the budget if
-- every one were as large as allowed, so a take never holds more than `budget` bytes
-- of entries within the size limit (one oversized foreign entry can still arrive
-- alone, to be dead-lettered on its length). An id-only entry (`{"id":..,"ref":true}`,
-- see src/queue/entry_form.rs) is returned with the envelope its record holds in its
-- place (one HGET here instead of a round trip later), and counts its size; one whose
-- record has none is returned as it is, for the scheduler to refuse.
-- KEYS[1]  <prefix>:submit   the submit stream
-- ARGV     prefix, consumer, max (entries), budget (bytes), largest (bytes per entry)
-- Returns  the entries as XREADGROUP lists them for one stream: {{id, {field, value,
--          ...}}, ...}
local consumer = ARGV[2]
local max, budget, largest = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out, bytes = {}, 0
while #out < max do
  local room = math.floor((budget - bytes) / largest)
  if room < 1 then
    if #out > 0 then break end
    room = 1
  end
  local n = math.min(max - #out, room)
  local r = redis.call('XREADGROUP', 'GROUP', 'schedulers', consumer, 'COUNT', n,
    'STREAMS', KEYS[1], '>')
  if not r then break end
  local entries = r[1][2]
  for _, e in ipairs(entries) do
    out[#out + 1] = e
    local fields = e[2]
    for i = 1, #fields - 1, 2 do
      local ref = fields[i] == 'job' and ref_of(fields[i + 1])
      if ref then fields[i + 1] = redis.call('HGET', rec_key(ref), 'env') or fields[i + 1] end
    end
    for i = 1, #fields do bytes = bytes + #fields[i] end
  end
  if #entries < n then break end
end
return out
