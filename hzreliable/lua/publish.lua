-- publish.lua: stores one message or a batch, all or nothing.
--
-- KEYS[1]  stream of the topic
-- KEYS[2]  metadata hash of the topic; besides the ring settings it holds
--          one field "p:<publisher id>" = "counter first count" per
--          publisher, for deduplication
-- ARGV[1]  capacity
-- ARGV[2]  time to live in microseconds (0 = no retention period)
-- ARGV[3]  overload policy: BLOCK, ERROR, DISCARD_OLDEST or DISCARD_NEWEST
-- ARGV[4]  epoch to use if the topic has to be created
-- ARGV[5]  publisher id ('' = no deduplication)
-- ARGV[6]  the publisher's counter for this call
-- ARGV[7..] codec tag and payload, one pair per message
--
-- Returns one of
--   {0, first_sequence, count}  stored (or already stored by this very call;
--                               for an older call, its successor's)
--   {1}                         discarded (DISCARD_NEWEST)
--   {2, wait_us}                full under BLOCK: retry after wait_us
--   {3}                         full under ERROR
--   {4, capacity, ttl_us}       the topic exists with other ring settings
--
-- Atomicity is the point: retention, the fullness check, the overload policy
-- and the XADDs must see one state, or concurrent publishers could overfill
-- the ring or receive interleaved sequences for one batch. Every redis.call
-- costs, so the settings and this publisher's last call come from one HMGET.

local stream, meta_key = KEYS[1], KEYS[2]
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local policy = ARGV[3]
local publisher, counter = ARGV[5], ARGV[6]
local count = (#ARGV - 6) / 2
local field = 'p:' .. publisher

local meta = redis.call('HMGET', meta_key, 'cap', 'ttl', field)

-- A resent call (its reply was lost) must not store its messages twice. A
-- publisher's calls are sequential and its counter only grows, so a counter
-- at or below the last one stored is a copy arriving late: from a connection
-- given up on, even after the publisher's next call. Its reply goes nowhere.
if meta[3] then
  local c, first, n = string.match(meta[3], '^(%S+) (%S+) (%S+)$')
  if tonumber(counter) <= tonumber(c) then
    return {0, tonumber(first), tonumber(n)}
  end
end

local now = now_us()
if not meta[1] then
  redis.call('HSET', meta_key, 'cap', ARGV[1], 'ttl', ARGV[2],
    'epoch', ARGV[4], 'created', us_string(now))
elseif meta[1] ~= ARGV[1] or meta[2] ~= ARGV[2] then
  return {4, tonumber(meta[1]), tonumber(meta[2])}
end

expire(stream, ttl, now)

-- Without a retention period nothing promises to keep a message, so the ring
-- is never full and every policy overwrites the oldest (as in Hazelcast).
if ttl > 0 and policy ~= 'DISCARD_OLDEST' then
  local size = redis.call('XLEN', stream)
  local excess = size + count - cap
  if excess > 0 then
    if policy == 'DISCARD_NEWEST' then
      return {1}
    elseif policy == 'ERROR' then
      return {3}
    end
    local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)
    local frees_at = time_of(oldest[#oldest]) + ttl
    return {2, math.max(frees_at - now, 1)}
  end
end

local stamp = us_string(now)
local first
for i = 7, #ARGV, 2 do
  local id = redis.call('XADD', stream, 'MAXLEN', '=', cap, '0-*',
    't', stamp, 'c', ARGV[i], 'd', ARGV[i + 1])
  if not first then
    first = seq_of(id)
  end
end

if publisher ~= '' then
  local added = redis.call('HSET', meta_key, field,
    counter .. ' ' .. us_string(first) .. ' ' .. us_string(count))
  -- Limitation: the hash keeps one field per publisher (a thread, or an
  -- in-flight asyncio publish) ever seen, and forgets them all past 10,000.
  -- Per-field TTLs (HEXPIRE, Redis 7.4) would age idle ones out instead.
  if added == 1 and redis.call('HLEN', meta_key) > 10004 then
    local keep = redis.call('HMGET', meta_key, 'cap', 'ttl', 'epoch', 'created')
    redis.call('DEL', meta_key)
    redis.call('HSET', meta_key, 'cap', keep[1], 'ttl', keep[2],
      'epoch', keep[3], 'created', keep[4])
  end
end
return {0, first, count}
