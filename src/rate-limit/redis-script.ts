/**
 * The rate-limiting algorithms of algorithms.ts, transcribed to Lua so that
 * Redis runs every policy of a request in one atomic script, in one round
 * trip. The arithmetic mirrors the TypeScript line for line; one behaviour
 * suite runs against both.
 *
 * - The time comes from Redis (`TIME`) unless the caller passes one, so that
 *   servers with skewed clocks agree.
 * - Two passes: every policy is evaluated first, and state is written only if
 *   all of them admit the request: a request refused by one policy consumes
 *   nothing from the others.
 * - Each state is written with `SET ... PX` in the same step that computes it:
 *   no INCR-then-EXPIRE window, no DECR that resurrects an expired key.
 *
 * KEYS: one per policy. ARGV[1]: now in ms, or '' to use Redis TIME. Then five
 * values per policy: algorithm code, limit, windowMs, burst, cost.
 * Returns: now (ms, integer), then five integers per policy: allowed (0/1),
 * remaining, resetMs, retryAfterMs, delayMs.
 */
import type { StoreScript } from '../stores/types.js';
import type { Algorithm } from './algorithms.js';

export const ALGORITHM_CODES: Record<Algorithm, number> = {
  'token-bucket': 1,
  'sliding-window': 2,
  'fixed-window': 3,
  'leaky-bucket': 4,
};

const LUA = `
-- Redis 3.2 to 4 need effects replication to write after TIME; from 5 on it is the default.
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local EPS = 1e-9
local function ceilms(x) if x <= EPS then return 0 end return math.ceil(x - EPS) end
-- No tolerance: hints and TTLs from the value the check compares (see ceilExact).
local function ceilexact(x) if x <= 0 then return 0 end return math.ceil(x) end
-- Full double precision, as the TypeScript stores it.
local function fmt(x) return string.format('%.17g', x) end
-- A stored index ahead of the clock stays current by one window or a clock step (CLOCK_STEP_MS)
-- at most; further ahead it was counted with another window or is a bucket's state (see windowIndex).
local function window_index(window, stored)
  local index = math.floor(now / window)
  if stored and stored > index and (stored - index) * window <= math.max(window, 60000) then
    return stored
  end
  return index
end
local function parse(s)
  local r = {}
  if s then for v in string.gmatch(s, '[^:]+') do r[#r + 1] = tonumber(v) end end
  return r
end

-- Each returns allowed, remaining, resetMs, retryAfterMs, delayMs, next state (or false), ttl.
local function token_bucket(limit, window, burst, cost, st)
  local interval = window / limit
  local tolerance = interval * burst
  local tat = math.max(st[1] or now, now)
  local next_tat = tat + cost * interval
  local allow_at = tat + (cost - burst) * interval
  if allow_at > now then
    return 0, math.max(0, math.floor((tolerance - (tat - now)) / interval + EPS)),
      ceilms(tat - now), ceilexact(allow_at - now), 0, false, 0
  end
  local nxt = false
  if next_tat > now then nxt = fmt(next_tat) end
  return 1, math.max(0, math.floor((tolerance - (next_tat - now)) / interval + EPS)),
    ceilms(next_tat - now), 0, 0, nxt, ceilexact(next_tat - now)
end

local function sliding_window(limit, window, burst, cost, st)
  local index = window_index(window, st[1])
  local current, previous = 0, 0
  if st[1] == index then
    current = st[2] or 0
    previous = st[3] or 0
  elseif st[1] == index - 1 then
    previous = st[2] or 0
  end
  local start = index * window
  local elapsed = math.min(1, math.max(0, (now - start) / window))
  local estimate = previous * (1 - elapsed) + current
  local reset_at = start + window
  if current > 0 then reset_at = start + 2 * window end
  if estimate + cost > limit + EPS then
    local admit_at
    local room = limit - cost - current
    local room_next = limit - cost
    if room >= 0 and previous > 0 then
      admit_at = start + (1 - room / previous) * window
    elseif room_next >= 0 and current > 0 then
      admit_at = start + window + (1 - room_next / current) * window
    else
      admit_at = start + 2 * window
    end
    return 0, math.max(0, math.floor(limit - estimate + EPS)), ceilms(reset_at - now),
      ceilms(admit_at - now), 0, false, 0
  end
  local after = current + cost
  local reset2 = reset_at
  if after > 0 then reset2 = start + 2 * window end
  local nxt = false
  if cost > 0 then nxt = fmt(index) .. ':' .. fmt(after) .. ':' .. fmt(previous) end
  return 1, math.max(0, math.floor(limit - estimate - cost + EPS)), ceilms(reset2 - now), 0, 0,
    nxt, ceilms(start + 2 * window - now)
end

local function fixed_window(limit, window, burst, cost, st)
  local index = window_index(window, st[1])
  local count = 0
  if st[1] == index then count = st[2] or 0 end
  local reset = ceilms((index + 1) * window - now)
  if count + cost > limit then
    return 0, math.max(0, limit - count), reset, reset, 0, false, 0
  end
  local nxt = false
  if cost > 0 then nxt = fmt(index) .. ':' .. fmt(count + cost) end
  return 1, limit - count - cost, reset, 0, 0, nxt, reset
end

local function leaky_bucket(limit, window, burst, cost, st)
  local interval = window / limit
  local max_delay = interval * burst
  local start = math.max(st[1] or now, now)
  local delay = start - now
  if cost == 0 then
    return 1, math.max(0, math.floor((max_delay - delay) / interval + EPS) + 1), ceilms(delay), 0, 0,
      false, 0
  end
  local empty_at = start + cost * interval
  local allow_at = start - max_delay
  if allow_at > now then
    return 0, 0, ceilms(start - now), ceilexact(allow_at - now), 0, false, 0
  end
  local nxt = false
  if empty_at > now then nxt = fmt(empty_at) end
  local room = math.max(0, math.floor((max_delay - (empty_at - now)) / interval + EPS) + 1)
  return 1, room, ceilms(empty_at - now), 0, ceilms(delay), nxt, ceilexact(empty_at - now)
end

local algorithms = { token_bucket, sliding_window, fixed_window, leaky_bucket }
local out = { math.floor(now) }
local writes = {}
local all = true
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 5
  local code = tonumber(ARGV[b + 1])
  local limit, window, burst, cost =
    tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local capacity = limit
  if code == 1 then capacity = burst end
  local allowed, remaining, reset, retry, delay, nxt, ttl
  if cost > capacity then
    -- More than the policy can ever hold: refused outright (see capacity() in algorithms.ts).
    allowed, remaining, reset, retry, delay, nxt, ttl = 0, 0, 0, ceilms(window), 0, false, 0
  else
    allowed, remaining, reset, retry, delay, nxt, ttl =
      algorithms[code](limit, window, burst, cost, parse(redis.call('GET', KEYS[i])))
  end
  if allowed == 0 then all = false end
  writes[i] = { nxt, ttl }
  out[#out + 1] = allowed
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
  out[#out + 1] = delay
end
if all then
  for i = 1, #KEYS do
    local w = writes[i]
    -- At least a second, as MIN_TTL_MS in backend.ts.
    if w[1] then redis.call('SET', KEYS[i], w[1], 'PX', math.max(1000, w[2])) end
  end
end
return out
`;

export const RATE_LIMIT_SCRIPT: StoreScript = { name: 'rateLimit', lua: LUA };

/**
 * Hands back what one admitted check took, for `slots: 'per-counter'` when
 * another policy of the request refused it. The exact inverse of the
 * consume's write when nothing came in between; otherwise it removes this
 * request's units from whatever the state has become:
 *
 * - buckets: the TAT moves back by `cost · interval`. If the bucket refilled
 *   to its cap between the consume and the refund, the refill the cap would
 *   have discarded is kept: at most `cost` units, at most the refill of that
 *   interval (a round trip, milliseconds).
 * - windows: the count of the window the consume counted in (from its `now`)
 *   goes down by `cost`; once that window is over (or is the previous one of a
 *   sliding window, then its weight) nothing else is touched.
 *
 * KEYS[1]: the counter. ARGV: the consume's now (ms), now or '' for Redis TIME,
 * algorithm code, limit, windowMs, burst, cost. Returns 1 when it changed the state.
 */
const REFUND_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local consumed_at = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local code, limit, window, cost =
  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
local s = redis.call('GET', KEYS[1])
if not s or cost <= 0 then return 0 end
local st = {}
for v in string.gmatch(s, '[^:]+') do st[#st + 1] = tonumber(v) end
local function fmt(x) return string.format('%.17g', x) end
if code == 1 or code == 4 then
  local tat = st[1] - cost * (window / limit)
  if tat <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], fmt(tat), 'PX', math.max(1000, math.ceil(tat - now)))
  end
  return 1
end
local index = math.floor(consumed_at / window)
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
if code == 3 then
  if st[1] ~= index then return 0 end
  redis.call('SET', KEYS[1], fmt(st[1]) .. ':' .. fmt(math.max(0, st[2] - cost)), 'PX', ttl)
  return 1
end
if st[1] == index then
  st[2] = math.max(0, st[2] - cost)
elseif st[1] == index + 1 then
  st[3] = math.max(0, (st[3] or 0) - cost)
else
  return 0
end
redis.call('SET', KEYS[1], fmt(st[1]) .. ':' .. fmt(st[2]) .. ':' .. fmt(st[3] or 0), 'PX', ttl)
return 1
`;

export const RATE_LIMIT_REFUND_SCRIPT: StoreScript = { name: 'rateLimitRefund', lua: REFUND_LUA };
