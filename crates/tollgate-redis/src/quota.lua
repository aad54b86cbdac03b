-- tollgate's quota script: every limit of one quota key, all or nothing, on Redis's clock.
--
-- KEYS[1]  the quota's hash (one field per limit, "p" the pause, "a" the adaptive pace)
-- ARGV[1]  the operation: admit | queued | refund | charge | remaining | pause | throttled
-- ARGV[2]  how many limits follow (n)
-- then three values per limit: field, interval (µs per unit), burst span (µs: the burst
-- times the interval)
-- then "0" (no adaptive limit), or "1" and five values: the adaptive limit's initial rate,
-- floor and ceiling (requests per second; ceiling 0: none), and the requests limit that
-- bounds it, rate per second and burst (0 0: none)
-- then the operation's own values:
--   admit, refund, charge   n costs, one per limit
--   queued                  n costs, then n amounts already queued ahead, then the requests
--                           queued ahead (for the adaptive pace)
--   remaining               the limit's position (1-based), what the provider says is left
--   pause                   the delay (µs); then n amounts to keep at its end (1 on requests)
--   throttled               how long ago (µs) the throttled request was admitted
--
-- Replies: admit and queued answer {0, 0} (admitted) or {1, wait in µs}, then what the key
-- holds after it, for the replica's outlook: the pause left (µs), the adaptive pace's wait for
-- one more request (µs; 0 without one), and per limit its room, as µs of refill (now less the
-- time it is empty until: from its negative debt up to its burst's span). The others answer
-- {0}. Under an adaptive limit every reply carries one more value: the learned rate in force,
-- in thousandths of a request per second.
-- Times are microseconds as Lua numbers (exact below 2^53, ~285 years).

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local key = KEYS[1]
local op = ARGV[1]
local n = tonumber(ARGV[2])
local SEC = 1000000
local INF = math.huge

-- Per limit: its field, µs per unit, and how far back "full" is (the burst's span).
local F, I, S = {}, {}, {}
local fields = {}
for i = 1, n do
  local at = 3 * i
  F[i] = ARGV[at]
  I[i] = tonumber(ARGV[at + 1])
  S[i] = tonumber(ARGV[at + 2])
  fields[i] = F[i]
end
fields[n + 1] = 'p'
fields[n + 2] = 'a'
local stored = redis.call('HMGET', key, unpack(fields))

-- The adaptive limit, if any.
local A = nil
local extra = 3 + 3 * n
if ARGV[extra] == '1' then
  A = {
    initial = tonumber(ARGV[extra + 1]),
    floor = tonumber(ARGV[extra + 2]),
    ceiling = tonumber(ARGV[extra + 3]),
    limit_rate = tonumber(ARGV[extra + 4]),
    limit_burst = tonumber(ARGV[extra + 5]),
  }
  if A.ceiling <= 0 then
    A.ceiling = INF
  end
  extra = extra + 6
else
  extra = extra + 1
end

-- Each limit's state is "the time it is empty until" (µs): GCRA's theoretical arrival time less
-- the burst's span; for the token bucket, the time its tokens would have run out (tokens v at
-- t: t - v × interval). Both admit alike. Never earlier than full: a limit holds no more than
-- its burst.
local state = {}
for i = 1, n do
  local full = now - S[i]
  local e = stored[i]
  if e then
    e = tonumber(e)
    if not e then
      return redis.error_reply('tollgate: bad state under ' .. key)
    end
    if e < full then
      e = full
    end
  else
    e = full
  end
  state[i] = e
end
-- Numbers are written with every digit (tostring keeps 14, too few for µs since 1970).
local function digits(x)
  return string.format('%.17g', x)
end

-- Writes back "empty until" e for limit i, never holding more than the burst.
local writes = {}
local function write(i, e)
  local full = now - S[i]
  if e < full then
    e = full
  end
  writes[#writes + 1] = F[i]
  writes[#writes + 1] = digits(e)
  state[i] = e
end

local paused = tonumber(stored[n + 1] or '0')

-- ===== the adaptive pace =====
--
-- The learned request rate of every replica together, as tollgate-ratelimit's adaptive.rs
-- learns it for one process (CUBIC after a throttle, slow start before the first): the same
-- constants, the same rule, on Redis's clock. Kept in field "a" as one string of numbers.

local DECREASE = 0.85
local MIN_RECOVERY = 4.0
local MAX_RECOVERY = 60.0
local RECOVERY_REQUESTS = 60.0
local BUCKET = 0.5 * SEC
local SMOOTHING = 0.8
local RECENT = 8
local FORGET_AFTER = 300 * SEC
-- phases
local AT_CEILING, SLOW_START, CUBIC = 0, 1, 2

local pace = nil
local pace_dirty = false
-- Defined only under an adaptive limit (a closure each costs time on every call).
local load_pace, pace_idle_at, write_pace, measure, rate, learned, tolerance, pace_wait, pace_admit, recent_rate, pace_throttled
if A then

  load_pace = function()
    local raw = stored[n + 2]
    local p
    if raw then
      local v = {}
      for x in string.gmatch(raw, '%S+') do
        v[#v + 1] = tonumber(x)
      end
      p = {
        phase = v[1], since = v[2], w_max = v[3], k = v[4], next_at = v[5],
        decreased_at = v[6], bucket_start = v[7], bucket_count = v[8], measured = v[9],
        saturated = v[10], last = v[11], count = v[12], recent = {},
      }
      for i = 1, RECENT do
        p.recent[i] = v[12 + i]
      end
      if not p.recent[RECENT] then
        return redis.error_reply('tollgate: bad adaptive state under ' .. key)
      end
    else
      p = {
        phase = SLOW_START, since = now, w_max = 0, k = 0, next_at = 0, decreased_at = -1,
        bucket_start = now, bucket_count = 0, measured = 0, saturated = 0, last = now,
        count = 0, recent = {},
      }
      for i = 1, RECENT do
        p.recent[i] = 0
      end
      pace_dirty = true
    end
    -- A requests limit bounds the rate: held there until a throttle; without one, a search.
    if A.limit_rate > 0 and p.phase == SLOW_START then
      p.phase = AT_CEILING
    elseif A.limit_rate <= 0 and p.phase == AT_CEILING then
      p.phase = SLOW_START
      p.since = p.bucket_start
    end
    pace = p
    return nil
  end

  pace_idle_at = function()
    return math.max(pace.next_at, pace.last + FORGET_AFTER)
  end

  write_pace = function()
    if not pace_dirty then
      return
    end
    local p = pace
    local v = {
      p.phase, p.since, p.w_max, p.k, p.next_at, p.decreased_at, p.bucket_start,
      p.bucket_count, p.measured, p.saturated, p.last, p.count,
    }
    for i = 1, RECENT do
      v[#v + 1] = p.recent[i]
    end
    for i = 1, #v do
      v[i] = digits(v[i])
    end
    writes[#writes + 1] = 'a'
    writes[#writes + 1] = table.concat(v, ' ')
  end

  -- The smoothed send rate at t, closing the buckets that ended.
  measure = function(t)
    local elapsed = t - pace.bucket_start
    if elapsed >= BUCKET then
      local buckets = math.floor(elapsed / BUCKET)
      local sample = pace.bucket_count / (BUCKET / SEC)
      pace.measured = SMOOTHING * sample + (1 - SMOOTHING) * pace.measured
      -- Every further bucket that ended was empty.
      pace.measured = pace.measured * (1 - SMOOTHING) ^ math.min(buckets - 1, 64)
      pace.bucket_start = pace.bucket_start + buckets * BUCKET
      pace.bucket_count = 0
      pace_dirty = true
    end
    return pace.measured
  end

  -- The rate the curve allows at t (per second), or nil while the limits alone hold it.
  rate = function(t)
    local initial = A.initial
    local supported = INF
    if A.limit_rate <= 0 then
      supported = math.max(2 * pace.measured, initial)
    end
    local curve
    if pace.phase == AT_CEILING then
      return nil
    elseif pace.phase == SLOW_START then
      if math.min(supported, A.ceiling) <= initial then
        curve = initial
      else
        curve = initial * 2 ^ math.min(math.max((t - pace.since) / SEC, 0), 60)
      end
    else
      supported = math.max(supported, DECREASE * pace.w_max)
      local c = pace.w_max * (1 - DECREASE) / (pace.k ^ 3)
      local x = math.max((t - pace.since) / SEC, 0) - pace.k
      curve = pace.w_max + c * x ^ 3
    end
    local r = math.max(math.min(curve, supported, A.ceiling), A.floor)
    if A.limit_rate > 0 and r >= A.limit_rate then
      return nil
    end
    return r
  end

  -- The rate in force at t, for observers.
  learned = function(t)
    local r = rate(t)
    if r then
      return r
    end
    if A.limit_rate > 0 then
      return A.limit_rate
    end
    return A.initial
  end

  -- How far ahead of now the next arrival may be (µs): the requests limit's burst at r.
  tolerance = function(r)
    if A.limit_rate > 0 and A.limit_burst > 1 then
      return (A.limit_burst - 1) / r * SEC
    end
    return 0
  end

  -- How long (µs) until `ahead` more requests, and then one, may go.
  pace_wait = function(ahead)
    local r = rate(now)
    if not r then
      return 0
    end
    return math.max(pace.next_at, now) + ahead / r * SEC - tolerance(r) - now
  end

  -- Counts an admission now.
  pace_admit = function()
    measure(now)
    local r = rate(now)
    pace.bucket_count = pace.bucket_count + 1
    pace.recent[(pace.count % RECENT) + 1] = now
    pace.count = pace.count + 1
    pace.last = now
    pace.saturated = 0
    if r then
      local interval = SEC / r
      -- A request admitted a little late keeps the schedule; one after an idle spell starts it
      -- afresh.
      local slack = interval * 0.1
      if pace.next_at - tolerance(r) >= now - slack then
        pace.saturated = 1
      end
      local base = now
      if pace.next_at >= now - slack then
        base = pace.next_at
      end
      pace.next_at = base + interval
    end
    pace_dirty = true
  end

  -- The rate of the last few admissions, per second (unbounded with fewer than two).
  recent_rate = function()
    local m = math.min(pace.count, RECENT)
    if m < 2 then
      return INF
    end
    local newest = pace.recent[((pace.count - 1) % RECENT) + 1]
    local oldest = pace.recent[((pace.count - m) % RECENT) + 1]
    local span = (newest - oldest) / SEC
    if span > 0 then
      return (m - 1) / span
    end
    return INF
  end

  -- A request admitted at `taken` was throttled: lower the rate, once per episode.
  pace_throttled = function(taken)
    if pace.decreased_at >= 0 and taken < pace.decreased_at then
      return
    end
    local measured = measure(now)
    local paced = rate(taken)
    if not paced then
      paced = (A.limit_rate > 0) and A.limit_rate or INF
    end
    local sent
    if pace.saturated == 1 and paced < INF then
      sent = paced
    else
      sent = math.max(measured, recent_rate())
    end
    local w_max = math.max(math.min(paced, sent), A.floor)
    pace.phase = CUBIC
    pace.since = now
    pace.w_max = w_max
    pace.k = math.min(math.max(RECOVERY_REQUESTS / w_max, MIN_RECOVERY), MAX_RECOVERY)
    pace.decreased_at = now
    -- Without a ceiling, the next request goes one interval of the new pace from now.
    if A.limit_rate <= 0 then
      local r = rate(now)
      if r then
        pace.next_at = math.max(pace.next_at, now + SEC / r)
      end
    end
    pace_dirty = true
  end
end

-- The reply `r`, with the learned rate under an adaptive limit.
local function reply(r)
  if pace then
    r[#r + 1] = math.floor(learned(now) * 1000 + 0.5)
  end
  return r
end

-- The reply to admit and queued: the decision, then the key's pause, pace and room.
local function decided(code, wait)
  local r = {code, wait, math.max(math.ceil(paused - now), 0), 0}
  if pace then
    r[4] = math.max(math.ceil(pace_wait(0)), 0)
  end
  for i = 1, n do
    r[4 + i] = math.floor(now - state[i])
  end
  return reply(r)
end

if A then
  local bad = load_pace()
  if bad then
    return bad
  end
end


-- Saves the writes, and lets the hash expire a second after every limit is full again and
-- the pause is over.
local function save()
  if pace then
    write_pace()
  end
  if #writes > 0 then
    redis.call('HSET', key, unpack(writes))
  end
  local idle_at = math.max(now, paused)
  for i = 1, n do
    idle_at = math.max(idle_at, state[i] + S[i])
  end
  if pace then
    idle_at = math.max(idle_at, pace_idle_at())
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
    local e = state[i] + c * I[i]
    after[i] = e
    -- Admitted while the limit is not empty beyond now.
    wait = math.max(wait, e - now)
  end
  if op == 'queued' then
    if pace then
      wait = math.max(wait, pace_wait(tonumber(ARGV[extra + 2 * n])))
    end
    return decided(1, math.max(math.ceil(wait), 1))
  end
  if pace then
    wait = math.max(wait, pace_wait(0))
  end
  if wait > 0 then
    if pace_dirty then
      save()
    end
    return decided(1, math.ceil(wait))
  end
  for i = 1, n do
    write(i, after[i])
  end
  if pace then
    pace_admit()
  end
  save()
  return decided(0, 0)
end

if op == 'refund' or op == 'charge' then
  local sign = (op == 'refund') and -1 or 1
  for i = 1, n do
    local c = cost(i)
    if c > 0 then
      write(i, state[i] + sign * c * I[i])
    end
  end
  save()
  return reply({0})
end

if op == 'remaining' then
  local i = tonumber(ARGV[extra])
  local left = tonumber(ARGV[extra + 1])
  -- Never believe in more than `left`: empty at least until left units have refilled.
  local e = now - left * I[i]
  if state[i] < e then
    write(i, e)
  end
  save()
  return reply({0})
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
    local e = until_ - keep * I[i]
    if state[i] < e then
      write(i, e)
    end
  end
  if pace and pace.next_at < until_ then
    pace.next_at = until_
    pace_dirty = true
  end
  save()
  return reply({0})
end

if op == 'throttled' then
  if pace then
    pace_throttled(now - tonumber(ARGV[extra]))
    save()
  end
  return reply({0})
end

return redis.error_reply('tollgate: unknown operation ' .. tostring(op))
