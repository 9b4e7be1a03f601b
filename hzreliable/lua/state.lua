-- state.lua: applies the retention period, then describes the ring.
--
-- KEYS[1]  stream of the topic
-- KEYS[2]  metadata hash of the topic
--
-- Returns {head, tail, size, epoch}; epoch is false when the topic has no
-- metadata (never created, destroyed or lost). Expiring first, in the same
-- script, keeps head and size consistent with the retention rule even when
-- no one has published for a while.

local meta = redis.call('HMGET', KEYS[2], 'ttl', 'epoch')
local ttl = tonumber(meta[1]) or 0
expire(KEYS[1], ttl, now_us())
local tail = tail_of(KEYS[1])
local size = redis.call('XLEN', KEYS[1])
local head = tail + 1 - size
if size > 0 then
  head = seq_of(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][1])
end
return {head, tail, size, meta[2]}
