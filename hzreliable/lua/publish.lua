-- publish.lua: stores one message or a batch, all or nothing.
--
-- KEYS[1]  stream of the topic
-- KEYS[2]  metadata hash of the topic
-- KEYS[3]  hash of publisher id -> "counter first count" (deduplication)
-- ARGV[1]  capacity
-- ARGV[2]  time to live in microseconds (0 = no retention period)
-- ARGV[3]  overload policy: BLOCK, ERROR, DISCARD_OLDEST or DISCARD_NEWEST
-- ARGV[4]  epoch to use if the topic has to be created
-- ARGV[5]  publisher id ('' = no deduplication)
-- ARGV[6]  the publisher's counter for this call
-- ARGV[7..] codec tag and payload, one pair per message
--
-- Returns one of
--   {0, first_sequence, count}  stored (or already stored by this very call)
--   {1}                         discarded (DISCARD_NEWEST)
--   {2, wait_us}                full under BLOCK: retry after wait_us
--   {3}                         full under ERROR
--   {4, capacity, ttl_us}       the topic exists with other ring settings
--
-- Atomicity is the point: retention, the fullness check, the overload policy
-- and the XADDs must see one state, or concurrent publishers could overfill
-- the ring or receive interleaved sequences for one batch.

local stream, meta_key, pubs = KEYS[1], KEYS[2], KEYS[3]
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local policy = ARGV[3]
local publisher, counter = ARGV[5], ARGV[6]
local count = (#ARGV - 6) / 2

-- A retried call (the reply was lost) must not store its messages twice.
if publisher ~= '' then
  local done = redis.call('HGET', pubs, publisher)
  if done then
    local c, first, n = string.match(done, '^(%S+) (%S+) (%S+)$')
    if c == counter then
      return {0, tonumber(first), tonumber(n)}
    end
  end
end

local meta = redis.call('HMGET', meta_key, 'cap', 'ttl')
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
  -- Limitation: the table holds one field per publishing thread ever seen;
  -- it is dropped when it grows large. Per-field TTLs (HEXPIRE, Redis 7.4)
  -- would let idle publishers age out one by one instead.
  if redis.call('HLEN', pubs) > 10000 then
    redis.call('DEL', pubs)
  end
  redis.call('HSET', pubs, publisher,
    counter .. ' ' .. us_string(first) .. ' ' .. us_string(count))
end
return {0, first, count}
