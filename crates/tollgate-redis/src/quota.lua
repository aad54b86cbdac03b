-- tollgate's quota script: every limit of one quota key, all or nothing, on Redis's clock.
--
-- KEYS[1]  the quota's hash (one field per limit, plus "p", the pause)
-- ARGV[1]  the operation: admit | queued | refund | charge | remaining | pause
-- ARGV[2]  how many limits follow (n)
-- then five values per limit: field, algorithm ("t" token bucket, "g" GCRA), amount per
-- period, period (µs), burst
-- then the operation's own values:
--   admit, refund, charge   n costs, one per limit
--   queued                  n costs, then n amounts already queued ahead
--   remaining               the limit's position (1-based), what the provider says is left
--   pause                   the delay (µs); then n amounts to keep at its end (1 on requests)
--
-- Replies: admit and queued answer {0} (admitted) or {1, wait in µs}; the others answer {0}.
-- Times are microseconds as Lua numbers (exact below 2^53, ~285 years).

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local key = KEYS[1]
local op = ARGV[1]
local n = tonumber(ARGV[2])
local extra = 3 + 5 * n

local limits = {}
local fields = {}
for i = 1, n do
  local at = 3 + 5 * (i - 1)
  local limit = {
    field = ARGV[at],
    gcra = ARGV[at + 1] == 'g',
    amount = tonumber(ARGV[at + 2]),
    period = tonumber(ARGV[at + 3]),
    burst = tonumber(ARGV[at + 4]),
  }
  -- µs per unit
  limit.interval = limit.period / limit.amount
  limits[i] = limit
  fields[#fields + 1] = limit.field
  fields[#fields + 1] = limit.field .. '@'
end
fields[#fields + 1] = 'p'
local stored = redis.call('HMGET', key, unpack(fields))

-- When limit i is full: empty until its whole burst ago.
local function full(i)
  return now - limits[i].burst * limits[i].interval
end

-- Each limit's state as "the time it is empty until": GCRA's theoretical arrival time, and for
-- the token bucket the time its tokens would have run out (tokens v at t: t - v * interval).
-- Both read the same; the bucket keeps (tokens, time) so that its stored form is the familiar one.
-- Never earlier than full: a limit holds no more than its burst.
local function stored_state(i)
  local limit = limits[i]
  local a = stored[2 * i - 1]
  if not a then
    return full(i)
  end
  a = tonumber(a)
  if limit.gcra then
    return a - limit.burst * limit.interval
  end
  local t = tonumber(stored[2 * i])
  return t - a * limit.interval
end
local state = {}
for i = 1, n do
  state[i] = math.max(stored_state(i), full(i))
end
-- Numbers are written with every digit (tostring keeps 14, too few for µs since 1970).
local function digits(x)
  return string.format('%.17g', x)
end

-- Writes back "empty until" e for limit i, never holding more than the burst.
local writes = {}
local function write(i, e)
  local limit = limits[i]
  e = math.max(e, full(i))
  if limit.gcra then
    writes[#writes + 1] = limit.field
    writes[#writes + 1] = digits(e + limit.burst * limit.interval)
  else
    writes[#writes + 1] = limit.field
    writes[#writes + 1] = digits((now - e) / limit.interval)
    writes[#writes + 1] = limit.field .. '@'
    writes[#writes + 1] = digits(now)
  end
  state[i] = e
end

local paused = tonumber(stored[2 * n + 1] or '0')

-- Saves the writes, and lets the hash expire a second after every limit is full again and
-- the pause is over.
local function save()
  if #writes > 0 then
    redis.call('HSET', key, unpack(writes))
  end
  local idle_at = math.max(now, paused)
  for i = 1, n do
    idle_at = math.max(idle_at, state[i] - full(i) + now)
  end
  redis.call('PEXPIRE', key, math.ceil((idle_at - now) / 1000) + 1000)
end

local function cost(i)
  return tonumber(ARGV[extra + i - 1])
end

if op == 'admit' or op == 'queued' then
  local wait = math.max(paused - now, 0)
  local after = {}
  for i = 1, n do
    local c = cost(i)
    if op == 'queued' then
      c = c + tonumber(ARGV[extra + n + i - 1])
    end
    local e = state[i] + c * limits[i].interval
    after[i] = e
    -- Admitted while the limit is not empty beyond now.
    wait = math.max(wait, e - now)
  end
  if op == 'queued' then
    return {1, math.max(math.ceil(wait), 1)}
  end
  if wait > 0 then
    return {1, math.ceil(wait)}
  end
  for i = 1, n do
    write(i, after[i])
  end
  save()
  return {0}
end

if op == 'refund' or op == 'charge' then
  local sign = (op == 'refund') and -1 or 1
  for i = 1, n do
    local c = cost(i)
    if c > 0 then
      write(i, state[i] + sign * c * limits[i].interval)
    end
  end
  save()
  return {0}
end

if op == 'remaining' then
  local i = tonumber(ARGV[extra])
  local left = tonumber(ARGV[extra + 1])
  local limit = limits[i]
  -- Never believe in more than `left`: empty at least until left units have refilled.
  local e = now - left * limit.interval
  if state[i] < e then
    write(i, e)
  end
  save()
  return {0}
end

if op == 'pause' then
  local delay = tonumber(ARGV[extra])
  local until_ = now + delay
  if until_ > paused then
    writes[#writes + 1] = 'p'
    writes[#writes + 1] = digits(until_)
    paused = until_
  end
  -- The first request may go at the end of the pause; everyone after it at the limits' pace.
  for i = 1, n do
    local keep = tonumber(ARGV[extra + i])
    local e = until_ - keep * limits[i].interval
    if state[i] < e then
      write(i, e)
    end
  end
  save()
  return {0}
end

return redis.error_reply('tollgate: unknown operation ' .. tostring(op))
