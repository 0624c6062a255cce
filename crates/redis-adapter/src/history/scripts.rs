//! The Lua scripts: each runs atomically in Redis, so a message's offset and its place in the
//! room's stream are decided together.
//!
//! Numbers cross into Lua as strings and are formatted back with `%.0f`, never `tostring`,
//! which would print offsets past 10^14 in exponent form.

/// Appends a message. `KEYS`: the counter, the room's stream. `ARGV`: event, arguments (JSON),
/// time (ms), most messages kept (0: no limit), oldest time kept (ms; empty: no limit), how
/// long an idle room lives (ms; 0: for ever). Returns the offset.
///
/// Expired messages at the front of the stream are deleted (a bounded number per append: they
/// are few, the room is written to); later ones out of time order are filtered by reads.
pub(crate) const APPEND: &str = r"
local offset = redis.call('INCR', KEYS[1])
local id = string.format('%.0f', offset) .. '-0'
local max = tonumber(ARGV[4])
if max > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '=', max, id, 'e', ARGV[1], 'a', ARGV[2], 't', ARGV[3])
else
  redis.call('XADD', KEYS[2], id, 'e', ARGV[1], 'a', ARGV[2], 't', ARGV[3])
end
if ARGV[5] ~= '' then
  local cutoff = tonumber(ARGV[5])
  for _ = 1, 100 do
    local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
    if not first then break end
    local at = nil
    for i = 1, #first[2], 2 do
      if first[2][i] == 't' then at = tonumber(first[2][i + 1]) end
    end
    if at == nil or at >= cutoff then break end
    redis.call('XDEL', KEYS[2], first[1])
  end
end
local ttl = tonumber(ARGV[6])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return offset
";

/// Reads a page. `KEYS`: the room's stream. `ARGV`: after (empty: the newest), limit, oldest
/// time kept (ms; empty: no limit). Returns `more` (0 or 1), then four strings per message,
/// oldest first: id, event, arguments, time.
pub(crate) const READ: &str = r"
local key = KEYS[1]
local limit = tonumber(ARGV[2])
local cutoff = nil
if ARGV[3] ~= '' then cutoff = tonumber(ARGV[3]) end
local function fields(entry)
  local e, a, t = '', '[]', '0'
  for i = 1, #entry[2], 2 do
    local name = entry[2][i]
    if name == 'e' then e = entry[2][i + 1]
    elseif name == 'a' then a = entry[2][i + 1]
    elseif name == 't' then t = entry[2][i + 1] end
  end
  return e, a, t
end
local function fresh(t)
  return cutoff == nil or tonumber(t) >= cutoff
end
local found = {}
local more = 0
if ARGV[1] ~= '' then
  local start = '(' .. ARGV[1] .. '-0'
  for _ = 1, 64 do
    local want = limit + 1 - #found
    if want <= 0 then break end
    local batch = redis.call('XRANGE', key, start, '+', 'COUNT', want)
    if #batch == 0 then break end
    for _, entry in ipairs(batch) do
      local e, a, t = fields(entry)
      if fresh(t) then table.insert(found, {entry[1], e, a, t}) end
      start = '(' .. entry[1]
    end
  end
  if #found > limit then
    more = 1
    found[#found] = nil
  end
else
  local finish = '+'
  local newest = {}
  for _ = 1, 64 do
    local want = limit - #newest
    if want <= 0 then break end
    local batch = redis.call('XREVRANGE', key, finish, '-', 'COUNT', want)
    if #batch == 0 then break end
    for _, entry in ipairs(batch) do
      local e, a, t = fields(entry)
      if fresh(t) then table.insert(newest, {entry[1], e, a, t}) end
      finish = '(' .. entry[1]
    end
  end
  for i = #newest, 1, -1 do table.insert(found, newest[i]) end
end
local out = {more}
for _, m in ipairs(found) do
  table.insert(out, m[1]); table.insert(out, m[2]); table.insert(out, m[3]); table.insert(out, m[4])
end
return out
";

/// Reserves a block of offsets. `KEYS`: the counter. `ARGV`: the floor (the first offset the
/// caller knows to be free), the block's size. Returns the block's last offset.
pub(crate) const RESERVE: &str = r"
local floor = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < floor - 1 then
  redis.call('SET', KEYS[1], string.format('%.0f', floor - 1))
end
return redis.call('INCRBY', KEYS[1], ARGV[2])
";
